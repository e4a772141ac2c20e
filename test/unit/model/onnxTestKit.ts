import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { newOnnxTensor, type OnnxAttribute, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from '../../../src/core/formats/onnxModel';

/** Shared by the ONNX tests: fixtures, ONNX Runtime, Debian's onnx checker and a small graph builder. */

export const MODELS = path.join(__dirname, '..', '..', 'fixtures', 'models');
export const fixture = (name: string) => path.join(MODELS, name);

export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function randomInput(dims: readonly number[], seed: number): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => 2 * rand() - 1);
}

/** Runs a model file on one input with graph optimizations off, so the reference is the graph as written. */
export async function runModel(
  file: string,
  input: { name: string; dims: number[]; data: Float32Array | Uint16Array; type?: 'float32' | 'float16' },
): Promise<Map<string, Float64Array>> {
  const session = await ort.InferenceSession.create(file, { graphOptimizationLevel: 'disabled', executionProviders: ['cpu'] });
  try {
    const result = await session.run({ [input.name]: new ort.Tensor(input.type ?? 'float32', input.data, input.dims) });
    return new Map(Object.entries(result).map(([name, t]) => [name, toFloat64(t.data as Float32Array | Uint16Array, t.type)]));
  } finally {
    await session.release();
  }
}

function toFloat64(data: Float32Array | Uint16Array, type: string): Float64Array {
  if (type !== 'float16') return Float64Array.from(data);
  const f16 = (h: number) => {
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
    return h & 0x8000 ? -v : v;
  };
  return Float64Array.from(data as Uint16Array, f16);
}

/** max |a − b| divided by max |a|: the error relative to the output's magnitude. */
export function relativeError(reference: Float64Array, other: Float64Array): { maxAbs: number; relative: number } {
  if (reference.length !== other.length) throw new Error(`lengths differ: ${reference.length} vs ${other.length}`);
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(reference[i] - other[i]));
    scale = Math.max(scale, Math.abs(reference[i]));
  }
  return { maxAbs, relative: maxAbs / scale };
}

/** Debian's onnx checker with full shape inference; returns its complaint, '' when the model passes. */
export function onnxChecker(file: string): string {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import onnx,sys; onnx.checker.check_model(sys.argv[1], full_check=True)', file], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return r.status === 0 ? '' : r.stderr.trim().split('\n').slice(-1)[0] || `exit ${r.status}`;
}

export const opCount = (model: OnnxModel, op: string) => model.graph!.node.filter((n) => n.opType === op).length;

// ---------------------------------------------------------------------------------------------
// A builder for small float32 graphs with random weights.

const emptyAttribute = { floats: [], ints: [], strings: [], tensors: [], graphs: [], typeProtos: [] };

function attr(name: string, value: number | number[] | string): OnnxAttribute {
  if (typeof value === 'string') return { ...emptyAttribute, name, type: 3, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { ...emptyAttribute, name, type: 7, ints: value.map(BigInt) };
  return Number.isInteger(value) ? { ...emptyAttribute, name, type: 2, i: BigInt(value) } : { ...emptyAttribute, name, type: 1, f: value };
}

function tensorData(values: readonly number[], dataType: number): { dataType: number; rawData: Uint8Array } {
  const raw = dataType === 7 ? new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer) : new Uint8Array(Float32Array.from(values).buffer);
  return { dataType, rawData: raw };
}

export function valueInfo(name: string, dims: readonly number[], elemType = 1): OnnxValueInfo {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

export interface ConvSpec {
  out: number;
  in: number;
  k: number;
  stride?: number;
  pads?: number[];
  group?: number;
  dilation?: number;
  bias?: boolean;
  /** Node name; initializer names derive from it unless `weight` is given. */
  name?: string;
  weight?: string;
}

export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly rand: () => number;
  private count = 0;

  constructor(seed: number) {
    this.rand = seededRandom(seed);
  }

  private fresh(prefix: string): string {
    return `${prefix}_${this.count++}`;
  }

  initializer(name: string, dims: number[], lo = -1, hi = 1): string {
    const values = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * this.rand());
    this.initializers.push(newOnnxTensor({ name, dims, dataType: 1, rawData: new Uint8Array(values.buffer) }));
    return name;
  }

  /** An initializer holding exactly `values` (float32 unless `dataType` says int64 = 7). */
  constantInitializer(name: string, dims: number[], values: readonly number[], dataType = 1): string {
    this.initializers.push(newOnnxTensor({ name, dims, ...tensorData(values, dataType) }));
    return name;
  }

  /** A Constant node holding `values` (float32 unless `dataType` says int64 = 7). */
  constant(dims: number[], values: readonly number[], dataType = 1, name?: string): string {
    const output = this.fresh('const_out');
    const t = newOnnxTensor({ dims, ...tensorData(values, dataType) });
    this.nodes.push({
      opType: 'Constant',
      input: [],
      output: [output],
      attribute: [{ ...emptyAttribute, name: 'value', type: 4, t }],
      ...(name === undefined ? {} : { name }),
    });
    return output;
  }

  node(opType: string, input: string[], attributes: Record<string, number | number[] | string> = {}, name?: string): string {
    const output = this.fresh(`${opType.toLowerCase()}_out`);
    this.nodes.push({
      opType,
      input,
      output: [output],
      attribute: Object.entries(attributes).map(([k, v]) => attr(k, v)),
      ...(name === undefined ? {} : { name }),
    });
    return output;
  }

  conv(x: string, c: ConvSpec): string {
    const weight = this.initializer(c.weight ?? this.fresh('w'), [c.out, c.in / (c.group ?? 1), c.k, c.k], -0.5, 0.5);
    const inputs = [x, weight, ...(c.bias ? [this.initializer(this.fresh('b'), [c.out])] : [])];
    const p = Math.floor(c.k / 2);
    const d = c.dilation ?? 1;
    return this.node(
      'Conv',
      inputs,
      {
        dilations: [d, d],
        group: c.group ?? 1,
        kernel_shape: [c.k, c.k],
        pads: c.pads ?? [p, p, p, p],
        strides: [c.stride ?? 1, c.stride ?? 1],
      },
      c.name,
    );
  }

  bn(x: string, channels: number, name?: string, epsilon = 1e-3): string {
    const params = [
      [0.5, 1.5],
      [-1, 1],
      [-1, 1],
      [0.2, 2],
    ].map(([lo, hi]) => this.initializer(this.fresh('bn'), [channels], lo, hi));
    return this.node('BatchNormalization', [x, ...params], { epsilon, momentum: 0.9 }, name);
  }

  model(input: OnnxValueInfo, output: string, outputDims: number[]): OnnxModel {
    return {
      irVersion: 8,
      producerName: 'replens-test',
      opsetImport: [{ domain: '', version: 13 }],
      metadataProps: [],
      graph: { name: 'synthetic', node: this.nodes, initializer: this.initializers, input: [input], output: [valueInfo(output, outputDims)], valueInfo: [] },
    };
  }
}

/**
 * x → four blocks → three sums that are no blocks → y, 4 channels at 8×8 throughout. Blocks:
 * 'blocks.0' (unnamed, every branch kind), 'layer1.0' (Sum, groups 2), 'layer1.1' (dilated: not
 * fusible), 'blocks.1' (off-centre pads: not fusible).
 */
export function syntheticModel(seed: number): OnnxModel {
  const g = new GraphBuilder(seed);
  const x = 'x';
  // Unnamed nodes and weights: 3×3 + BN, 1×1 with bias (folded), identity BN and the input itself, chained Adds.
  const a1 = g.bn(g.conv(x, { out: 4, in: 4, k: 3 }), 4);
  const a2 = g.conv(x, { out: 4, in: 4, k: 1, bias: true });
  const a3 = g.bn(x, 4);
  const a = g.node('Relu', [g.node('Add', [g.node('Add', [g.node('Add', [a1, a2]), x]), a3])]);
  // Torch-style scopes of an unknown family, summed by one Sum node, grouped 2.
  const b1 = g.conv(a, { out: 4, in: 4, k: 3, group: 2, name: '/layer1/layer1.0/conv_a/Conv' });
  const b2 = g.conv(a, { out: 4, in: 4, k: 1, group: 2, name: '/layer1/layer1.0/conv_b/Conv' });
  const b = g.node('Relu', [g.node('Sum', [b1, b2], {}, '/layer1/layer1.0/Sum')]);
  // Dilated 3×3: a valid graph, but one conv cannot express it with the 1×1 branch.
  const c1 = g.conv(b, { out: 4, in: 4, k: 3, dilation: 2, pads: [2, 2, 2, 2], name: '/layer1/layer1.1/conv_a/Conv' });
  const c2 = g.conv(b, { out: 4, in: 4, k: 1, name: '/layer1/layer1.1/conv_b/Conv' });
  const c = g.node('Add', [c1, c2], {}, '/layer1/layer1.1/Add');
  // Off-centre padding (0 before, 2 after): same output size, not fusible.
  const d1 = g.conv(c, { out: 4, in: 4, k: 3, pads: [0, 0, 2, 2] });
  const d2 = g.conv(c, { out: 4, in: 4, k: 1 });
  const d = g.node('Add', [d1, d2]);
  // Not blocks: convs on different inputs; a conv plus a constant; a conv read twice.
  const e = g.node('Add', [g.conv(d, { out: 4, in: 4, k: 3 }), g.conv(c, { out: 4, in: 4, k: 3 })]);
  const f = g.node('Add', [g.conv(e, { out: 4, in: 4, k: 1 }), g.initializer('const', [4, 1, 1])]);
  const shared = g.conv(f, { out: 4, in: 4, k: 3 });
  const y = g.node('Add', [g.node('Add', [shared, f]), shared]);
  return g.model(valueInfo(x, [1, 4, 8, 8]), y, [1, 4, 8, 8]);
}
