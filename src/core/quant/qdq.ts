import { newOnnxAttribute, newOnnxTensor, type OnnxGraph, type OnnxModel, type OnnxNode, type OnnxTensor } from '../formats/onnxModel';

/**
 * INT8 in the QDQ form ONNX Runtime runs on CPU: a weight becomes an int8 initializer read through
 * DequantizeLinear (symmetric, zero point 0, per output channel or per tensor), an activation that
 * feeds a Conv or Gemm passes through QuantizeLinear → DequantizeLinear (uint8, asymmetric, per
 * tensor, from calibrated ranges): the U8S8 scheme of static post-training quantization.
 */

/** onnx.proto TensorProto.DataType codes. */
const FLOAT = 1;
const UINT8 = 2;
const INT8 = 3;

export type WeightScheme = 'per-channel' | 'per-tensor';

/** Symmetric int8 weights: q = round-half-even(w / s) in [-127, 127], s = max|w| / 127 of each output channel (or of the tensor). */
export function quantizeWeights(values: ArrayLike<number>, outChannels: number, scheme: WeightScheme): { q: Int8Array; scale: Float32Array } {
  const per = values.length / outChannels;
  const groups = scheme === 'per-channel' ? outChannels : 1;
  const span = values.length / groups;
  const scale = new Float32Array(groups);
  for (let g = 0; g < groups; g++) {
    let max = 0;
    for (let j = g * span; j < (g + 1) * span; j++) max = Math.max(max, Math.abs(values[j]));
    // A channel of zeros keeps scale 1, as ONNX Runtime's quantizer does: any scale represents it exactly.
    scale[g] = max > 0 ? max / 127 : 1;
  }
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const s = scale[scheme === 'per-channel' ? Math.floor(i / per) : 0];
    q[i] = Math.max(-127, Math.min(127, roundHalfEven(values[i] / s)));
  }
  return { q, scale };
}

/** What QuantizeLinear does (round half to even), so the weights RepLens rounds match the activations ONNX Runtime rounds. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/** uint8 scale and zero point of an activation seen in [lo, hi]; the range always holds 0, so zero (ReLU's floor, padding) is exact. */
export function activationParams(lo: number, hi: number): { scale: number; zeroPoint: number } {
  const min = Math.min(lo, 0);
  const max = Math.max(hi, 0);
  const scale = max > min ? (max - min) / 255 : 1;
  return { scale, zeroPoint: Math.max(0, Math.min(255, Math.round(-min / scale))) };
}

/** Which of a node's inputs are weights (read through DequantizeLinear) and which activations (quantized), for the ops quantized. */
const QUANTIZED_INPUTS: Readonly<Record<string, { activation: number; weight: number }>> = {
  Conv: { activation: 0, weight: 1 },
  Gemm: { activation: 0, weight: 1 },
};

/** Output channels are the first axis of a Conv weight, and of a Gemm weight read with transB = 1 (any other Gemm is quantized per tensor). */
function outputChannelsFirst(node: OnnxNode): boolean {
  return node.opType === 'Conv' || node.attribute.some((a) => a.name === 'transB' && Number(a.i) === 1);
}

/** The activations a QDQ graph quantizes: every Conv and Gemm input that is not an initializer. */
export function quantizedActivations(graph: OnnxGraph): string[] {
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const names = graph.node.flatMap((n) => {
    const at = QUANTIZED_INPUTS[n.opType ?? '']?.activation;
    const x = at === undefined ? undefined : n.input[at];
    return x !== undefined && !initializers.has(x) ? [x] : [];
  });
  return [...new Set(names)];
}

/** What one copy of a set of nodes quantizes. */
export interface QuantVariant {
  /** Appended to every tensor the copy computes (`name::suffix`). */
  suffix: string;
  weights?: WeightScheme;
  /** Quantize the activations that feed a Conv or Gemm, with these ranges (by the float tensor's name). */
  activations?: ReadonlyMap<string, { lo: number; hi: number }>;
}

/**
 * Adds quantized copies of nodes to a float graph, each reading the float graph's own tensors where it
 * starts: copied alone, a block measures its own quantization error on its float input; copied whole,
 * the graph is the INT8 model. The float graph is left as it is.
 */
export class QdqGraph {
  private readonly initializers: Map<string, OnnxTensor>;
  private readonly weightReads = new Map<string, string>();
  private readonly activationReads = new Map<string, string>();
  readonly model: OnnxModel;

  constructor(float: OnnxModel) {
    const graph = float.graph!;
    this.initializers = new Map(graph.initializer.map((t) => [t.name!, t]));
    this.model = { ...float, graph: { ...graph, node: [...graph.node], initializer: [...graph.initializer], output: [...graph.output] } };
  }

  private get graph(): OnnxGraph {
    return this.model.graph!;
  }

  /** Copies `nodes` (in graph order) as `variant`; returns the copies' names for each output of theirs, e.g. block → block::int8. */
  copy(nodes: readonly OnnxNode[], variant: QuantVariant): Map<string, string> {
    const renamed = new Map<string, string>();
    for (const node of nodes) for (const out of node.output) renamed.set(out, `${out}::${variant.suffix}`);
    for (const node of nodes) {
      const io = QUANTIZED_INPUTS[node.opType ?? ''];
      const input = node.input.map((name, k) => {
        const inner = renamed.get(name) ?? name;
        if (!io) return inner;
        if (k === io.weight && variant.weights && this.initializers.has(name))
          return this.dequantizedWeight(name, outputChannelsFirst(node) ? variant.weights : 'per-tensor');
        if (k === io.activation && variant.activations && !this.initializers.has(name)) return this.quantizedActivation(inner, name, variant.activations);
        return inner;
      });
      this.graph.node.push({ ...node, name: `${node.name ?? node.output[0]}::${variant.suffix}`, input, output: node.output.map((o) => renamed.get(o)!) });
    }
    return renamed;
  }

  /** Makes `tensors` graph outputs (without a type: ONNX Runtime infers it). */
  expose(tensors: Iterable<string>): void {
    const known = new Set(this.graph.output.map((o) => o.name));
    for (const name of tensors) if (!known.has(name)) this.graph.output.push({ name });
  }

  private addInitializer(tensor: OnnxTensor): string {
    this.graph.initializer.push(tensor);
    return tensor.name!;
  }

  /** An int8 copy of weight `name`, read through DequantizeLinear (one per weight and scheme, shared by every copy). */
  private dequantizedWeight(name: string, scheme: WeightScheme): string {
    const key = `${name}::${scheme}`;
    const known = this.weightReads.get(key);
    if (known) return known;
    const t = this.initializers.get(name)!;
    const raw = t.rawData;
    if (!(raw instanceof Uint8Array) || t.dataType !== FLOAT) throw new Error(`weight '${name}' is not a float32 initializer held in the model`);
    const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const { q, scale } = quantizeWeights(values, t.dims[0], scheme);
    const perChannel = scheme === 'per-channel';
    const qName = this.addInitializer(newOnnxTensor({ name: `${key}.int8`, dims: [...t.dims], dataType: INT8, rawData: new Uint8Array(q.buffer) }));
    const sName = this.addInitializer(
      newOnnxTensor({ name: `${key}.scale`, dims: perChannel ? [scale.length] : [], dataType: FLOAT, rawData: new Uint8Array(scale.buffer) }),
    );
    const zName = this.addInitializer(
      newOnnxTensor({ name: `${key}.zero`, dims: perChannel ? [scale.length] : [], dataType: INT8, rawData: new Uint8Array(scale.length) }),
    );
    const out = `${key}.dequantized`;
    this.graph.node.push({
      name: out,
      opType: 'DequantizeLinear',
      input: [qName, sName, zName],
      output: [out],
      attribute: perChannel ? [newOnnxAttribute('axis', 'INT', [0])] : [],
    });
    this.weightReads.set(key, out);
    return out;
  }

  /** `tensor` (a copy's name for float activation `float`) through QuantizeLinear → DequantizeLinear with the float tensor's calibrated range. */
  private quantizedActivation(tensor: string, float: string, ranges: ReadonlyMap<string, { lo: number; hi: number }>): string {
    const known = this.activationReads.get(tensor);
    if (known) return known;
    const range = ranges.get(float);
    if (!range) throw new Error(`no calibrated range for activation '${float}'`);
    const { scale, zeroPoint } = activationParams(range.lo, range.hi);
    const sName = this.addInitializer(
      newOnnxTensor({ name: `${tensor}::qscale`, dims: [], dataType: FLOAT, rawData: new Uint8Array(Float32Array.of(scale).buffer) }),
    );
    const zName = this.addInitializer(newOnnxTensor({ name: `${tensor}::qzero`, dims: [], dataType: UINT8, rawData: Uint8Array.of(zeroPoint) }));
    const q = `${tensor}::quantized`;
    const dq = `${tensor}::dequantized`;
    this.graph.node.push({ name: q, opType: 'QuantizeLinear', input: [tensor, sName, zName], output: [q], attribute: [] });
    this.graph.node.push({ name: dq, opType: 'DequantizeLinear', input: [q, sName, zName], output: [dq], attribute: [] });
    this.activationReads.set(tensor, dq);
    return dq;
  }
}
