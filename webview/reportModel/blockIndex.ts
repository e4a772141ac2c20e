/**
 * Which nodes of a graph belong to which block. The block name is the only key shared
 * by the train-form and deploy-form graphs, so it is what maps one onto the other.
 */
import type { GraphView } from '../../src/shared/reportData';

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface GraphBlockIndex {
  /** Positions in graph.nodes, per block. */
  nodes: Map<string, number[]>;
  /** The box around each block's nodes. */
  bounds: Map<string, Rect>;
}

export function indexGraphBlocks(graph: GraphView): GraphBlockIndex {
  const nodes = new Map<string, number[]>();
  const box = new Map<string, { x0: number; y0: number; x1: number; y1: number }>();
  graph.nodes.forEach((n, i) => {
    if (n.block === undefined) return;
    const list = nodes.get(n.block);
    if (list) list.push(i);
    else nodes.set(n.block, [i]);
    const b = box.get(n.block);
    if (!b) box.set(n.block, { x0: n.x, y0: n.y, x1: n.x + n.width, y1: n.y + n.height });
    else {
      b.x0 = Math.min(b.x0, n.x);
      b.y0 = Math.min(b.y0, n.y);
      b.x1 = Math.max(b.x1, n.x + n.width);
      b.y1 = Math.max(b.y1, n.y + n.height);
    }
  });
  const bounds = new Map<string, Rect>();
  for (const [k, b] of box) bounds.set(k, { x: b.x0, y: b.y0, width: b.x1 - b.x0, height: b.y1 - b.y0 });
  return { nodes, bounds };
}

/** Blocks top to bottom, then left to right, the order arrow keys walk a graph pane in. */
export function blocksInVisualOrder(index: GraphBlockIndex): string[] {
  return [...index.bounds].sort(([, a], [, b]) => a.y - b.y || a.x - b.x).map(([name]) => name);
}

/** The block one step from `current` in `order`, wrapping around; the first block when nothing is current. */
export function stepBlock(order: readonly string[], current: string | null, step: 1 | -1): string | null {
  if (order.length === 0) return null;
  const i = current === null ? -1 : order.indexOf(current);
  if (i < 0) return step === 1 ? order[0] : order[order.length - 1];
  return order[(i + step + order.length) % order.length];
}
