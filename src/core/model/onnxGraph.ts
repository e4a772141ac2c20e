import { ONNX_DATA_TYPE, type OnnxAttribute, type OnnxGraph, type OnnxNode, type OnnxTensor } from '../formats/onnxModel';
import { bfloat16ToNumber, decodeToFloat64, float16ToNumber, isFloatDType, numelOf, type Tensor } from '../formats/tensor';

/*
 * The graph as block detection reads it: who produces and who reads each tensor, node attributes,
 * and the values of constants that are at hand without reading the file.
 */

/** What detection needs of an initializer. */
export type InitializerMeta = Pick<Tensor, 'name' | 'shape' | 'dtype'>;

export function isDefaultDomain(node: OnnxNode): boolean {
  return node.domain === undefined || node.domain === '' || node.domain === 'ai.onnx';
}

export function attribute(node: OnnxNode, name: string): OnnxAttribute | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function intsAttribute(node: OnnxNode, name: string): number[] | undefined {
  const a = attribute(node, name);
  return a === undefined ? undefined : a.ints.map(Number);
}

export function intAttribute(node: OnnxNode, name: string): number | undefined {
  const i = attribute(node, name)?.i;
  return i === undefined ? undefined : Number(i);
}

export function stringAttribute(node: OnnxNode, name: string): string | undefined {
  const s = attribute(node, name)?.s;
  return s === undefined ? undefined : new TextDecoder().decode(s);
}

/** Every tensor name read by the nodes of `graph` and of the subgraphs nested in them. */
export function namesReadIn(graph: OnnxGraph, into = new Set<string>()): Set<string> {
  for (const node of graph.node) {
    for (const input of node.input) into.add(input);
    for (const a of node.attribute) {
      if (a.g) namesReadIn(a.g, into);
      for (const g of a.graphs) namesReadIn(g, into);
    }
  }
  return into;
}

/**
 * A constant tensor: a Constant node's output or an initializer that is no graph input (an
 * initializer listed as an input may be overridden when the model runs). `values` is absent when
 * the data is still in the file (an initializer read from disk): detection cannot read it, so
 * anything that rests on it is checked when the block is fused.
 */
export interface ConstantTensor {
  dims: readonly number[];
  values?: Float64Array;
}

/** The values of a TensorProto held in memory; undefined for external or not yet read data and for types RepLens does not read. */
function tensorValues(t: OnnxTensor): Float64Array | undefined {
  const type = t.dataType === undefined ? undefined : ONNX_DATA_TYPE[t.dataType];
  if (type === undefined || t.dataLocation === 1) return undefined;
  let numel: number;
  try {
    numel = numelOf(t.dims);
  } catch {
    return undefined;
  }
  let values: Float64Array;
  if (t.rawData !== undefined) {
    if (!(t.rawData instanceof Uint8Array)) return undefined;
    values = decodeToFloat64(type.dtype, t.rawData);
  } else {
    switch (type.dtype) {
      case 'float32':
        values = Float64Array.from(t.floatData);
        break;
      case 'float64':
        values = Float64Array.from(t.doubleData);
        break;
      case 'int64':
        values = Float64Array.from(t.int64Data, Number);
        break;
      case 'float16':
        values = Float64Array.from(t.int32Data, float16ToNumber);
        break;
      case 'bfloat16':
        values = Float64Array.from(t.int32Data, bfloat16ToNumber);
        break;
      default:
        values = Float64Array.from(t.int32Data);
    }
  }
  return values.length === numel ? values : undefined;
}

/** The tensor of a Constant node, from whichever value attribute it has. */
function constantNodeTensor(node: OnnxNode): ConstantTensor | undefined {
  const [a, ...more] = node.attribute;
  if (a === undefined || more.length > 0) return undefined;
  switch (a.name) {
    case 'value':
      return a.t ? { dims: a.t.dims, values: tensorValues(a.t) } : undefined;
    case 'value_float':
      return a.f === undefined ? undefined : { dims: [], values: Float64Array.of(a.f) };
    case 'value_floats':
      return { dims: [a.floats.length], values: Float64Array.from(a.floats) };
    case 'value_int':
      return a.i === undefined ? undefined : { dims: [], values: Float64Array.of(Number(a.i)) };
    case 'value_ints':
      return { dims: [a.ints.length], values: Float64Array.from(a.ints, Number) };
    default:
      return undefined;
  }
}

/** Producers and readers of every tensor of the top-level graph. */
export class GraphIndex {
  readonly producer = new Map<string, number>();
  private readonly consumers = new Map<string, number[]>();
  /** Tensors whose value must stay observable: graph outputs and anything a subgraph reads. */
  private readonly pinned = new Set<string>();
  private readonly initializerProtos = new Map<string, OnnxTensor>();
  private readonly graphInputs: Set<string>;

  constructor(
    readonly graph: OnnxGraph,
    readonly initializers: ReadonlyMap<string, InitializerMeta>,
  ) {
    graph.node.forEach((node, i) => {
      for (const out of node.output) if (out !== '') this.producer.set(out, i);
      for (const input of node.input) {
        if (input === '') continue;
        const list = this.consumers.get(input);
        if (list) list.push(i);
        else this.consumers.set(input, [i]);
      }
      for (const a of node.attribute) {
        if (a.g) namesReadIn(a.g, this.pinned);
        for (const g of a.graphs) namesReadIn(g, this.pinned);
      }
    });
    for (const out of graph.output) if (out.name) this.pinned.add(out.name);
    for (const t of graph.initializer) if (t.name) this.initializerProtos.set(t.name, t);
    this.graphInputs = new Set(graph.input.map((v) => v.name ?? ''));
  }

  node(i: number): OnnxNode {
    return this.graph.node[i];
  }

  label(i: number): string {
    return this.node(i).name || `${this.node(i).opType} node #${i}`;
  }

  isPinned(tensor: string): boolean {
    return this.pinned.has(tensor);
  }

  /** The one node that reads `tensor`, if nothing else does (no other node, graph output or subgraph): only then may it disappear. */
  soleReader(tensor: string): number | undefined {
    const list = this.consumers.get(tensor);
    return list !== undefined && list.length === 1 && !this.pinned.has(tensor) ? list[0] : undefined;
  }

  readers(tensor: string): readonly number[] {
    return this.consumers.get(tensor) ?? [];
  }

  readOnlyBy(tensor: string, i: number): boolean {
    return this.soleReader(tensor) === i;
  }

  /** Whether every reader of `tensor` is in `nodes` and nothing else observes it. */
  readOnlyWithin(tensor: string, nodes: ReadonlySet<number>): boolean {
    return !this.pinned.has(tensor) && this.readers(tensor).every((r) => nodes.has(r));
  }

  /** A 4-D float initializer (a conv weight) or a 1-D one (bias, BN parameter). */
  param(name: string | undefined, rank: 1 | 4): InitializerMeta | undefined {
    const t = name ? this.initializers.get(name) : undefined;
    return t !== undefined && t.shape.length === rank && isFloatDType(t.dtype) ? t : undefined;
  }

  isInitializer(name: string): boolean {
    return this.initializerProtos.has(name) && !this.graphInputs.has(name);
  }

  /** The constant `tensor` holds, if it is one (see ConstantTensor). */
  constant(tensor: string): ConstantTensor | undefined {
    const p = this.producer.get(tensor);
    if (p !== undefined) {
      const node = this.node(p);
      return node.opType === 'Constant' && isDefaultDomain(node) ? constantNodeTensor(node) : undefined;
    }
    const t = this.initializerProtos.get(tensor);
    if (t === undefined || this.graphInputs.has(tensor)) return undefined;
    return { dims: t.dims, values: tensorValues(t) };
  }

  isSum(i: number | undefined): i is number {
    if (i === undefined) return false;
    const node = this.node(i);
    return (
      (node.opType === 'Add' || node.opType === 'Sum') &&
      isDefaultDomain(node) &&
      node.output.length === 1 &&
      node.input.length > 0 &&
      node.input.every((s) => s !== '')
    );
  }

  isConv(i: number | undefined): i is number {
    if (i === undefined) return false;
    const node = this.node(i);
    if (node.opType !== 'Conv' || !isDefaultDomain(node) || node.output.length !== 1) return false;
    if (node.input.length < 2 || node.input.length > 3 || !this.param(node.input[1], 4)) return false;
    if (node.input.length === 3 && node.input[2] !== '' && !this.param(node.input[2], 1)) return false;
    // A 2-D conv's list attributes, when present, have one entry per spatial axis (pads: begins and ends).
    const lengths = { strides: 2, dilations: 2, kernel_shape: 2, pads: 4 };
    return Object.entries(lengths).every(([name, n]) => (intsAttribute(node, name)?.length ?? n) === n);
  }

  /** Inference-mode BatchNormalization with its four parameters stored in the file. */
  isBn(i: number | undefined): i is number {
    if (i === undefined) return false;
    const node = this.node(i);
    if (node.opType !== 'BatchNormalization' || !isDefaultDomain(node) || node.input.length !== 5) return false;
    if (node.output.slice(1).some((o) => o !== '') || (intAttribute(node, 'training_mode') ?? 0) !== 0) return false;
    return node.input.slice(1).every((p) => this.param(p, 1) !== undefined);
  }
}
