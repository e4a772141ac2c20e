import type { OnnxGraph, OnnxNode } from '../formats/onnxModel';

/** A graph to lay out: operators as nodes, tensors flowing between them as edges. */
export interface GraphSpec {
  nodes: { id: string; label: string; op: string; block?: string; stage?: string; detail?: string }[];
  edges: { from: string; to: string }[];
}

export interface BlockRef {
  name: string;
  stage: string;
}

/**
 * Which block a node belongs to, from its name: exporters write module paths into node
 * names ('/stage1/stage1.0/rbr_dense/conv/Conv') and RepLens' own graphs prefix them
 * ('stage1.0.dense0.conv'), so the longest block name found as a path segment or prefix wins.
 */
export function blockMatcher(blocks: readonly BlockRef[]): (node: OnnxNode) => BlockRef | undefined {
  const byName = new Map(blocks.map((b) => [b.name, b]));
  const sorted = [...blocks].sort((a, b) => b.name.length - a.name.length);
  return (node) => {
    const name = node.name ?? '';
    for (const segment of name.split('/')) {
      const hit = byName.get(segment);
      if (hit) return hit;
    }
    return sorted.find((b) => name.startsWith(`${b.name}.`) || name.startsWith(`${b.name}/`) || node.output.some((o) => o === b.name));
  };
}

function attributeText(node: OnnxNode): string {
  return node.attribute
    .filter((a) => a.ints.length || a.i !== undefined || a.f !== undefined)
    .map((a) => `${a.name}=${a.ints.length ? `[${a.ints.join(',')}]` : a.i !== undefined ? String(a.i) : String(a.f)}`)
    .join(' ');
}

function labelOf(node: OnnxNode, kernels: Map<string, readonly number[]>): string {
  const op = node.opType ?? '?';
  if (op === 'Conv') {
    const dims = kernels.get(node.input[1] ?? '');
    if (dims && dims.length === 4) return `Conv ${dims[2]}×${dims[3]}`;
  }
  if (op === 'BatchNormalization') return 'BatchNorm';
  return op;
}

/**
 * The operator graph of an ONNX model: initializers are folded into their consumers,
 * graph inputs and outputs become small terminal nodes.
 */
export function graphSpecFromOnnx(graph: OnnxGraph, blockOf: (node: OnnxNode) => BlockRef | undefined = () => undefined): GraphSpec {
  const initializers = new Map(graph.initializer.map((t) => [t.name ?? '', t.dims as readonly number[]]));
  const producer = new Map<string, string>();
  const nodes: GraphSpec['nodes'] = [];
  const edges: GraphSpec['edges'] = [];
  for (const input of graph.input) {
    const name = input.name ?? '';
    if (initializers.has(name)) continue;
    const id = `input:${name}`;
    producer.set(name, id);
    nodes.push({ id, label: name, op: 'Input' });
  }
  graph.node.forEach((node, i) => {
    const id = `node:${i}`;
    const block = blockOf(node);
    nodes.push({
      id,
      label: labelOf(node, initializers),
      op: node.opType ?? '?',
      block: block?.name,
      stage: block?.stage,
      detail: [node.name, attributeText(node)].filter(Boolean).join('\n'),
    });
    for (const output of node.output) producer.set(output, id);
  });
  graph.node.forEach((node, i) => {
    for (const input of new Set(node.input)) {
      const from = producer.get(input);
      if (from) edges.push({ from, to: `node:${i}` });
    }
  });
  for (const output of graph.output) {
    const name = output.name ?? '';
    const from = producer.get(name);
    if (!from || from.startsWith('input:')) continue;
    const id = `output:${name}`;
    nodes.push({ id, label: name, op: 'Output' });
    edges.push({ from, to: id });
  }
  return { nodes, edges };
}
