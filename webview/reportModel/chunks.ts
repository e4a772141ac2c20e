/**
 * Splitting a drawing into horizontal bands ("chunks") of nodes so a pane can leave the
 * bands outside its view undisplayed. The browser lays out and paints only displayed
 * SVG, so a 5,000-node graph costs about as much as the few hundred nodes on screen.
 */
import type { GraphView } from '../../src/shared/reportData';
import type { Rect } from './blockIndex';
import type { VisibleGraph } from './collapse';

/** Enough nodes per chunk to keep the chunk count small, few enough that one screen shows only a handful. */
export const CHUNK_SIZE = 150;

export interface Chunks {
  /** Positions in graph.nodes, per chunk. */
  nodes: number[][];
  /** Positions in visible.edges, per chunk; edges go with the chunk of their source node. */
  edges: number[][];
  /** Edges between two collapsed boxes, which are always drawn, like the boxes. */
  staticEdges: number[];
  /** What each chunk covers, edges included. */
  bounds: Rect[];
}

export function chunkGraph(graph: GraphView, visible: VisibleGraph, size = CHUNK_SIZE): Chunks {
  const order = [...visible.nodes].sort((a, b) => graph.nodes[a].y - graph.nodes[b].y || graph.nodes[a].x - graph.nodes[b].x);
  const nodes: number[][] = [];
  for (let i = 0; i < order.length; i += size) nodes.push(order.slice(i, i + size));
  const chunkOf = new Map<string, number>();
  nodes.forEach((list, c) => list.forEach((i) => chunkOf.set(graph.nodes[i].id, c)));

  const box = nodes.map((list) => {
    const b = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    for (const i of list) {
      const n = graph.nodes[i];
      b.x0 = Math.min(b.x0, n.x);
      b.y0 = Math.min(b.y0, n.y);
      b.x1 = Math.max(b.x1, n.x + n.width);
      b.y1 = Math.max(b.y1, n.y + n.height);
    }
    return b;
  });
  const edges: number[][] = nodes.map(() => []);
  const staticEdges: number[] = [];
  visible.edges.forEach((e, k) => {
    const c = chunkOf.get(e.from) ?? chunkOf.get(e.to);
    if (c === undefined) {
      staticEdges.push(k);
      return;
    }
    edges[c].push(k);
    const b = box[c];
    for (const p of e.points) {
      b.x0 = Math.min(b.x0, p.x);
      b.y0 = Math.min(b.y0, p.y);
      b.x1 = Math.max(b.x1, p.x);
      b.y1 = Math.max(b.y1, p.y);
    }
  });
  const bounds = box.map((b) => ({ x: b.x0, y: b.y0, width: b.x1 - b.x0, height: b.y1 - b.y0 }));
  return { nodes, edges, staticEdges, bounds };
}

function intersects(a: Rect, b: Rect): boolean {
  return a.x <= b.x + b.width && b.x <= a.x + a.width && a.y <= b.y + b.height && b.y <= a.y + a.height;
}

/**
 * Which chunks to display for a view. The view is widened by `margin` of its size on
 * every side, so a short pan shows what was already laid out instead of an empty band.
 */
export function chunksInView(bounds: readonly Rect[], view: Rect, margin = 0.5): boolean[] {
  const wide = {
    x: view.x - view.width * margin,
    y: view.y - view.height * margin,
    width: view.width * (1 + 2 * margin),
    height: view.height * (1 + 2 * margin),
  };
  return bounds.map((b) => intersects(b, wide));
}

/** The topmost node under graph point (x, y) among the chunks' nodes, for clicks on the zoomed-out overview. */
export function nodeAt(graph: GraphView, chunks: Chunks, x: number, y: number): number | undefined {
  for (let c = chunks.nodes.length - 1; c >= 0; c--) {
    const b = chunks.bounds[c];
    if (x < b.x || x > b.x + b.width || y < b.y || y > b.y + b.height) continue;
    const list = chunks.nodes[c];
    for (let k = list.length - 1; k >= 0; k--) {
      const n = graph.nodes[list[k]];
      if (x >= n.x && x <= n.x + n.width && y >= n.y && y <= n.y + n.height) return list[k];
    }
  }
  return undefined;
}
