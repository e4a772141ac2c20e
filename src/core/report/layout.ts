import dagre from '@dagrejs/dagre';
import type { GraphSpec } from './graphSpec';
import type { GraphEdgeView, GraphGroupView, GraphNodeView, GraphView } from '../../shared/reportData';

const CHAR_WIDTH = 7;
const NODE_HEIGHT = 26;
const GROUP_PADDING = 12;
const MARGIN_X = 16;
const MARGIN_Y = 30;
// ranksep leaves room for the stage boxes' padding and label between layers of different stages.
const LAYOUT = { rankdir: 'TB', nodesep: 18, ranksep: 44 };

type Point = { x: number; y: number };
/** A piece laid out: centres by position in the piece, edge polylines by 'from>to' positions. */
interface PieceLayout {
  centers: Point[];
  edges: Map<string, Point[]>;
}

const nodeWidth = (label: string) => Math.max(60, label.length * CHAR_WIDTH + 20);
const edgeKey = (from: number, to: number) => `${from}>${to}`;

/** The spec's edges by node index (edges naming unknown nodes dropped, duplicates kept once). */
function adjacency(spec: GraphSpec): { targets: number[][]; sources: number[][] } {
  const index = new Map(spec.nodes.map((node, i) => [node.id, i]));
  const targets: number[][] = spec.nodes.map(() => []);
  const sources: number[][] = spec.nodes.map(() => []);
  for (const e of spec.edges) {
    const from = index.get(e.from);
    const to = index.get(e.to);
    if (from === undefined || to === undefined || targets[from].includes(to)) continue;
    targets[from].push(to);
    sources[to].push(from);
  }
  return { targets, sources };
}

/**
 * Outputs taken off the side of a chain (the per-block outputs of RepLens' own graphs): sinks
 * whose one producer also feeds other nodes. They are drawn beside their producer, not laid out
 * by dagre, which would give each a column of its own and push the chain one step sideways per block.
 */
function sideOutputs(targets: number[][], sources: number[][]): Map<number, number> {
  const side = new Map<number, number>();
  sources.forEach((from, i) => {
    if (targets[i].length === 0 && from.length === 1 && targets[from[0]].length > 1) side.set(i, from[0]);
  });
  return side;
}

/**
 * Cuts the nodes `members` (spec indices in topological order) into pieces joined by a single
 * node: a chain of blocks falls apart into one piece per block. Each piece after the first
 * starts with the node that joins it to the one before, or is not joined to it at all. Returns
 * one piece when the order is not topological.
 */
export function chainPieces(members: readonly number[], targets: readonly number[][]): number[][] {
  const position = new Map(members.map((i, p) => [i, p]));
  const lastTarget = members.map((i, p) => {
    let last = -1;
    for (const t of targets[i]) {
      const q = position.get(t);
      if (q === undefined) continue;
      if (q <= p) return Infinity;
      last = Math.max(last, q);
    }
    return last;
  });
  if (lastTarget.includes(Infinity)) return [[...members]];
  // Sweep the order: between positions p and p + 1 the graph can be cut when the only edges
  // crossing there leave the node at p.
  const endingAt = new Array<number>(members.length).fill(0);
  const pieces: number[][] = [];
  let piece: number[] = [];
  let crossing = 0;
  for (let p = 0; p < members.length; p++) {
    piece.push(members[p]);
    if (lastTarget[p] > p) {
      crossing++;
      endingAt[lastTarget[p]]++;
    }
    crossing -= endingAt[p];
    if (p < members.length - 1 && (crossing > 1 || (crossing === 1 && lastTarget[p] <= p))) continue;
    pieces.push(piece);
    piece = crossing === 1 ? [members[p]] : [];
  }
  return pieces;
}

/**
 * Lays out the nodes `piece` and the edges among them with dagre. The blocks of a chain are
 * mostly alike, so a piece with the same labels and edges as one laid out before reuses that
 * layout: a 641-block chain needs a handful of dagre runs, not 641.
 */
function layoutPiece(spec: GraphSpec, piece: readonly number[], targets: readonly number[][], seen: Map<string, PieceLayout>): PieceLayout {
  const local = new Map(piece.map((i, k) => [i, k]));
  const edges = piece.flatMap((i, k) => targets[i].filter((t) => local.has(t)).map((t) => edgeKey(k, local.get(t)!)));
  const signature = `${piece.map((i) => spec.nodes[i].label).join('\n')}\n${edges.join(' ')}`;
  const known = seen.get(signature);
  if (known) return known;
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ ...LAYOUT });
  g.setDefaultEdgeLabel(() => ({}));
  piece.forEach((i, k) => g.setNode(String(k), { width: nodeWidth(spec.nodes[i].label), height: NODE_HEIGHT }));
  for (const e of edges) g.setEdge(...(e.split('>') as [string, string]));
  dagre.layout(g);
  const laid: PieceLayout = {
    centers: piece.map((_, k) => ({ x: g.node(String(k)).x, y: g.node(String(k)).y })),
    edges: new Map(edges.map((e) => [e, ((g.edge(...(e.split('>') as [string, string]))?.points ?? []) as Point[]).map(({ x, y }) => ({ x, y }))])),
  };
  seen.set(signature, laid);
  return laid;
}

type Placed = { centers: Map<number, Point>; edgePoints: Map<string, Point[]> };

/** Lays out each piece and stacks it: a piece that starts at a node already placed hangs from it, any other goes under the rest. */
function stackPieces(spec: GraphSpec, pieces: number[][], targets: number[][]): Placed {
  const seen = new Map<string, PieceLayout>();
  const centers = new Map<number, Point>();
  const edgePoints = new Map<string, Point[]>();
  let bottom = -Infinity;
  let left = Infinity;
  pieces.forEach((piece, k) => {
    const laid = layoutPiece(spec, piece, targets, seen);
    const joint = centers.get(piece[0]);
    const exit = pieces[k + 1]?.[0] === piece.at(-1) ? piece.length - 1 : undefined;
    let dx = 0;
    let dy = 0;
    if (joint) {
      // The piece hangs from its joint; its exit goes straight below the joint, so the chain does not wander off sideways.
      dy = joint.y - laid.centers[0].y;
      dx = joint.x - laid.centers[exit ?? 0].x;
    } else if (k > 0) {
      // Not joined to the piece above (a second input, say): under it, left-aligned.
      dy = bottom + LAYOUT.ranksep - Math.min(...laid.centers.map((c) => c.y - NODE_HEIGHT / 2));
      dx = left - Math.min(...laid.centers.map((c) => c.x));
    }
    laid.centers.forEach((c, at) => {
      if (joint && at === 0) return;
      const moved = { x: c.x + dx, y: c.y + dy };
      centers.set(piece[at], moved);
      bottom = Math.max(bottom, moved.y + NODE_HEIGHT / 2);
      left = Math.min(left, moved.x);
    });
    for (const [key, points] of laid.edges) {
      const [from, to] = key.split('>').map(Number);
      const moved = points.map((p) => ({ x: p.x + dx, y: p.y + dy }));
      // Edges leaving the joint start where dagre drew its copy: move their first point onto the joint itself.
      if (joint && from === 0) moved[0].x += joint.x - (laid.centers[0].x + dx);
      edgePoints.set(edgeKey(piece[from], piece[to]), moved);
    }
  });
  return { centers, edgePoints };
}

const sizeOf = (spec: GraphSpec, i: number) => ({ width: nodeWidth(spec.nodes[i].label), height: NODE_HEIGHT });

/** Each side output left of everything beside its producer, on the producer's level, with a short edge across. */
function placeSideOutputs(spec: GraphSpec, side: Map<number, number>, { centers, edgePoints }: Placed): void {
  for (const [sink, producer] of side) {
    const p = centers.get(producer)!;
    const edgeOfRow = Math.min(...[...centers].filter(([, c]) => Math.abs(c.y - p.y) < NODE_HEIGHT).map(([i, c]) => c.x - sizeOf(spec, i).width / 2));
    const c = { x: edgeOfRow - LAYOUT.nodesep - sizeOf(spec, sink).width / 2, y: p.y };
    centers.set(sink, c);
    edgePoints.set(edgeKey(producer, sink), [
      { x: p.x - sizeOf(spec, producer).width / 2, y: p.y },
      { x: c.x + sizeOf(spec, sink).width / 2, y: p.y },
    ]);
  }
}

/** Each stage's box around its nodes, with room for its title. */
function stageGroups(nodes: readonly GraphNodeView[]): GraphGroupView[] {
  const stageBoxes = new Map<string, { x0: number; y0: number; x1: number; y1: number }>();
  for (const n of nodes) {
    if (!n.stage) continue;
    const b = stageBoxes.get(n.stage) ?? { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    stageBoxes.set(n.stage, { x0: Math.min(b.x0, n.x), y0: Math.min(b.y0, n.y), x1: Math.max(b.x1, n.x + n.width), y1: Math.max(b.y1, n.y + n.height) });
  }
  return [...stageBoxes].map(([stage, b]) => ({
    stage,
    x: b.x0 - GROUP_PADDING,
    y: b.y0 - GROUP_PADDING - 14,
    width: b.x1 - b.x0 + 2 * GROUP_PADDING,
    height: b.y1 - b.y0 + 2 * GROUP_PADDING + 14,
  }));
}

/**
 * Layered top-to-bottom layout of an operator graph, with each stage's bounding box as a group.
 * The graph is laid out a piece at a time (see chainPieces) and the pieces are stacked so the
 * node joining two of them lines up on one vertical: long chains stay straight and take about a
 * fifth of the time of one dagre run over everything.
 */
export function layoutGraph(spec: GraphSpec): GraphView {
  if (spec.nodes.length === 0) return { nodes: [], edges: [], groups: [], width: 2 * MARGIN_X, height: 2 * MARGIN_Y };
  const { targets, sources } = adjacency(spec);
  const side = sideOutputs(targets, sources);
  const members = spec.nodes.map((_, i) => i).filter((i) => !side.has(i));
  const placed = stackPieces(spec, chainPieces(members, targets), targets);
  placeSideOutputs(spec, side, placed);

  // Shift everything so the drawing starts at the margins.
  const boxes = spec.nodes.map((_, i) => {
    const c = placed.centers.get(i)!;
    const { width, height } = sizeOf(spec, i);
    return { x: c.x - width / 2, y: c.y - height / 2, width, height };
  });
  const shiftX = MARGIN_X - Math.min(...boxes.map((b) => b.x));
  const shiftY = MARGIN_Y - Math.min(...boxes.map((b) => b.y));
  const nodes: GraphNodeView[] = spec.nodes.map((n, i) => ({ ...n, ...boxes[i], x: boxes[i].x + shiftX, y: boxes[i].y + shiftY }));
  const index = new Map(spec.nodes.map((node, i) => [node.id, i]));
  const edges: GraphEdgeView[] = spec.edges.map((e) => ({
    from: e.from,
    to: e.to,
    points: (placed.edgePoints.get(edgeKey(index.get(e.from) ?? -1, index.get(e.to) ?? -1)) ?? []).map((p) => ({ x: p.x + shiftX, y: p.y + shiftY })),
  }));
  const groups = stageGroups(nodes);
  const right = Math.max(...nodes.map((n) => n.x + n.width), ...groups.map((g) => g.x + g.width));
  const lowest = Math.max(...nodes.map((n) => n.y + n.height), ...groups.map((g) => g.y + g.height));
  return { nodes, edges, groups, width: right + MARGIN_X, height: lowest + MARGIN_Y };
}
