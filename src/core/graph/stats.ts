import type { OnnxAttribute, OnnxGraph, OnnxNode } from '../formats/onnxModel';

export interface GraphStats {
  /** Elements of float initializers, without BatchNorm running statistics (as PyTorch counts parameters). */
  params: number;
  /** Multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul for the given input shapes; null when a shape could not be inferred. */
  macs: number | null;
  nodes: number;
  /** Why `macs` is null. */
  macsNote?: string;
}

const FLOAT_TYPES = new Set([1, 10, 11, 16]);

function ints(node: OnnxNode, name: string): number[] | undefined {
  const a = node.attribute.find((x: OnnxAttribute) => x.name === name);
  return a && a.ints.length > 0 ? a.ints.map(Number) : undefined;
}

function int(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attribute.find((x) => x.name === name);
  return a?.i !== undefined ? Number(a.i) : fallback;
}

const prod = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

function broadcast(shapes: readonly (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const dims = shapes.map((s) => s[s.length - rank + i] ?? 1);
    out.push(Math.max(...dims));
  }
  return out;
}

const ELEMENTWISE_UNARY = new Set([
  'Relu',
  'Sigmoid',
  'Tanh',
  'LeakyRelu',
  'Elu',
  'Selu',
  'HardSigmoid',
  'HardSwish',
  'Clip',
  'Identity',
  'Neg',
  'Abs',
  'Exp',
  'Log',
  'Sqrt',
  'Softmax',
  'LogSoftmax',
  'BatchNormalization',
  'InstanceNormalization',
  'LayerNormalization',
  'Dropout',
  'Erf',
  'Gelu',
  'Mish',
  'Softplus',
  'Cast',
]);
const ELEMENTWISE_BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'PRelu', 'Where']);

/** Output shape of a windowed op (Conv, pooling) from its input [N, C, spatial...]. */
function windowed(node: OnnxNode, x: readonly number[], channels: number, kernel: readonly number[]): number[] {
  const n = kernel.length;
  const strides = ints(node, 'strides') ?? Array(n).fill(1);
  const dilations = ints(node, 'dilations') ?? Array(n).fill(1);
  const pads = ints(node, 'pads') ?? Array(2 * n).fill(0);
  const autoPad = node.attribute.find((a) => a.name === 'auto_pad')?.s;
  const same = autoPad !== undefined && new TextDecoder().decode(autoPad).startsWith('SAME');
  const spatial = kernel.map((k, i) => {
    const size = x[2 + i];
    if (same) return Math.ceil(size / strides[i]);
    return Math.floor((size + pads[i] + pads[i + n] - dilations[i] * (k - 1) - 1) / strides[i]) + 1;
  });
  return [x[0], channels, ...spatial];
}

/**
 * Parameter count, MACs and node count of a graph for concrete input shapes. Shapes are
 * propagated through the ops RepLens graphs and common CNN exports use; MACs are only
 * reported when every Conv/Gemm/MatMul input shape is known.
 */
export function graphStats(graph: OnnxGraph, inputShapes: ReadonlyMap<string, readonly number[]>): GraphStats {
  const shapes = new Map<string, readonly number[]>(inputShapes);
  const initDims = new Map(graph.initializer.map((t) => [t.name ?? '', t.dims]));
  for (const [name, dims] of initDims) shapes.set(name, dims);

  const runningStats = new Set(graph.node.filter((n) => n.opType === 'BatchNormalization').flatMap((n) => n.input.slice(3, 5)));
  let params = 0;
  for (const t of graph.initializer) {
    if (FLOAT_TYPES.has(t.dataType ?? 0) && !runningStats.has(t.name ?? '')) params += prod(t.dims);
  }

  let macs = 0;
  let macsNote: string | undefined;
  for (const node of graph.node) {
    const op = node.opType ?? '';
    const ins = node.input.map((i) => (i === '' ? undefined : shapes.get(i)));
    const x = ins[0];
    let out: number[] | undefined;
    if (x !== undefined) {
      if (op === 'Conv' && ins[1]) {
        const w = ins[1];
        out = windowed(node, x, w[0], ints(node, 'kernel_shape') ?? w.slice(2));
        macs += prod(out) * prod(w.slice(1));
      } else if (op === 'ConvTranspose' && ins[1]) {
        const w = ins[1];
        const group = int(node, 'group', 1);
        const strides = ints(node, 'strides') ?? w.slice(2).map(() => 1);
        const pads = ints(node, 'pads') ?? Array(2 * (w.length - 2)).fill(0);
        const n = w.length - 2;
        out = [x[0], w[1] * group, ...w.slice(2).map((k, i) => strides[i] * (x[2 + i] - 1) + k - pads[i] - pads[i + n])];
        // Every input element is spread over (out/groups)·k·k outputs.
        macs += prod(x) * prod(w.slice(1));
      } else if (op === 'MaxPool' || op === 'AveragePool') {
        out = windowed(node, x, x[1], ints(node, 'kernel_shape') ?? []);
      } else if (op === 'GlobalAveragePool' || op === 'GlobalMaxPool') {
        out = [x[0], x[1], ...x.slice(2).map(() => 1)];
      } else if (op === 'Flatten') {
        const axis = int(node, 'axis', 1);
        out = [prod(x.slice(0, axis)), prod(x.slice(axis))];
      } else if (op === 'Gemm' && ins[1]) {
        const m = int(node, 'transA', 0) ? x[1] : x[0];
        const k = int(node, 'transA', 0) ? x[0] : x[1];
        const n = int(node, 'transB', 0) ? ins[1][0] : ins[1][1];
        out = [m, n];
        macs += m * n * k;
      } else if (op === 'MatMul' && ins[1] && x.length >= 2 && ins[1].length >= 2) {
        const b = ins[1];
        const batch = broadcast([x.slice(0, -2), b.slice(0, -2)]);
        out = [...batch, x[x.length - 2], b[b.length - 1]];
        macs += prod(out) * x[x.length - 1];
      } else if (ELEMENTWISE_UNARY.has(op)) {
        out = [...x];
      } else if (ELEMENTWISE_BINARY.has(op) && ins.every((s) => s !== undefined)) {
        out = broadcast(ins as number[][]);
      } else if (op === 'Concat' && ins.every((s) => s !== undefined)) {
        const axis = (int(node, 'axis', 0) + x.length) % x.length;
        out = [...x];
        out[axis] = (ins as number[][]).reduce((s, d) => s + d[axis], 0);
      }
    }
    if (out) {
      shapes.set(node.output[0], out);
    } else if (['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(op) && macsNote === undefined) {
      macsNote = `MACs unknown: no shape for the input of ${op} '${node.name ?? node.output[0]}'`;
    }
  }
  return macsNote === undefined ? { params, macs, nodes: graph.node.length } : { params, macs: null, nodes: graph.node.length, macsNote };
}
