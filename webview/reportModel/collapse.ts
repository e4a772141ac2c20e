/**
 * Collapsing stage groups without laying the graph out again: a collapsed stage's nodes
 * and inner edges are hidden and the stage's group rectangle is drawn as one node in their
 * place. Edges that cross the stage boundary are cut where they meet that rectangle, so
 * they end on (or start from) the box, and edges that become duplicates are drawn once.
 * The box keeps the stage's size, which leaves the rest of the drawing where it was: the
 * other pane and any saved pan/zoom still line up.
 */
import type { GraphGroupView, GraphView } from '../../src/shared/reportData';
import type { Rect } from './blockIndex';

export interface Point {
  x: number;
  y: number;
}

export interface StageMembers {
  /** Distinct blocks in graph order. */
  blocks: string[];
  nodes: number;
}

export interface CollapsedBox extends Rect {
  stage: string;
  /** Id the box has as an edge end, distinct from every node id. */
  id: string;
  blocks: string[];
  nodes: number;
}

export interface VisibleEdge {
  from: string;
  to: string;
  points: Point[];
}

export interface VisibleGraph {
  /** Positions in graph.nodes that are still drawn. */
  nodes: number[];
  edges: VisibleEdge[];
  /** Stage groups drawn as background rectangles. */
  groups: GraphGroupView[];
  /** Stage groups drawn as single nodes. */
  boxes: CollapsedBox[];
}

export function stageMembers(graph: GraphView): Map<string, StageMembers> {
  const out = new Map<string, { blocks: Set<string>; nodes: number }>();
  for (const n of graph.nodes) {
    if (n.stage === undefined) continue;
    const m = out.get(n.stage) ?? { blocks: new Set<string>(), nodes: 0 };
    if (n.block !== undefined) m.blocks.add(n.block);
    m.nodes++;
    out.set(n.stage, m);
  }
  return new Map([...out].map(([k, m]) => [k, { blocks: [...m.blocks], nodes: m.nodes }]));
}

export const collapsedBoxId = (stage: string): string => `stage-box:${stage}`;

function inside(p: Point, r: Rect): boolean {
  return p.x >= r.x && p.x <= r.x + r.width && p.y >= r.y && p.y <= r.y + r.height;
}

/** Where the segment from `a` (outside r) to `b` (inside r) first touches r (Liang–Barsky). */
export function entryPoint(a: Point, b: Point, r: Rect): Point {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  let t = 0;
  const edges: [number, number][] = [
    [-dx, a.x - r.x],
    [dx, r.x + r.width - a.x],
    [-dy, a.y - r.y],
    [dy, r.y + r.height - a.y],
  ];
  for (const [p, q] of edges) if (p < 0) t = Math.max(t, q / p);
  return { x: a.x + t * dx, y: a.y + t * dy };
}

/** The part of a polyline before it first enters r, ending on r's border; [] if it starts inside. */
export function cutAtEntry(points: readonly Point[], r: Rect): Point[] {
  const j = points.findIndex((p) => inside(p, r));
  if (j < 0) return points.slice();
  if (j === 0) return [];
  return [...points.slice(0, j), entryPoint(points[j - 1], points[j], r)];
}

/** The part of a polyline after it last leaves r, starting on r's border; [] if it ends inside. */
export function cutAtExit(points: readonly Point[], r: Rect): Point[] {
  return cutAtEntry([...points].reverse(), r).reverse();
}

export function collapseGraph(graph: GraphView, collapsed: ReadonlySet<string>): VisibleGraph {
  const members = stageMembers(graph);
  const boxes: CollapsedBox[] = [];
  const groups: GraphGroupView[] = [];
  const boxOfStage = new Map<string, CollapsedBox>();
  for (const g of graph.groups) {
    const m = members.get(g.stage);
    if (!collapsed.has(g.stage) || !m) {
      groups.push(g);
      continue;
    }
    const box: CollapsedBox = {
      stage: g.stage,
      id: collapsedBoxId(g.stage),
      x: g.x,
      y: g.y,
      width: g.width,
      height: g.height,
      blocks: m.blocks,
      nodes: m.nodes,
    };
    boxes.push(box);
    boxOfStage.set(g.stage, box);
  }
  if (boxes.length === 0) return { nodes: graph.nodes.map((_, i) => i), edges: graph.edges, groups, boxes };

  const boxOfNode = new Map<string, CollapsedBox>();
  const nodes: number[] = [];
  graph.nodes.forEach((n, i) => {
    const box = n.stage === undefined ? undefined : boxOfStage.get(n.stage);
    if (box) boxOfNode.set(n.id, box);
    else nodes.push(i);
  });

  const edges: VisibleEdge[] = [];
  const seen = new Set<string>();
  for (const e of graph.edges) {
    const fromBox = boxOfNode.get(e.from);
    const toBox = boxOfNode.get(e.to);
    if (fromBox && fromBox === toBox) continue;
    let points: Point[] = e.points;
    if (fromBox) points = cutAtExit(points, fromBox);
    if (toBox) points = cutAtEntry(points, toBox);
    const from = fromBox?.id ?? e.from;
    const to = toBox?.id ?? e.to;
    const key = `${from}\u0000${to}`;
    if (seen.has(key)) continue;
    seen.add(key);
    edges.push({ from, to, points });
  }
  return { nodes, edges, groups, boxes };
}
