import dagre from '@dagrejs/dagre';
import type { GraphSpec } from './graphSpec';
import type { GraphGroupView, GraphView } from './reportData';

const CHAR_WIDTH = 7;
const NODE_HEIGHT = 26;
const GROUP_PADDING = 12;

/** Layered top-to-bottom layout of an operator graph, with each stage's bounding box as a group. */
export function layoutGraph(spec: GraphSpec): GraphView {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  // ranksep leaves room for the stage boxes' padding and label between layers of different stages.
  g.setGraph({ rankdir: 'TB', nodesep: 18, ranksep: 44, marginx: 16, marginy: 30 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of spec.nodes) g.setNode(n.id, { width: Math.max(60, n.label.length * CHAR_WIDTH + 20), height: NODE_HEIGHT });
  for (const e of spec.edges) g.setEdge(e.from, e.to);
  dagre.layout(g);

  const nodes = spec.nodes.map((n) => {
    const p = g.node(n.id);
    return { ...n, x: p.x - p.width / 2, y: p.y - p.height / 2, width: p.width, height: p.height };
  });
  const edges = spec.edges.map((e) => ({ from: e.from, to: e.to, points: ((g.edge(e.from, e.to)?.points ?? []) as { x: number; y: number }[]).map(({ x, y }) => ({ x, y })) }));

  const boxes = new Map<string, { x0: number; y0: number; x1: number; y1: number }>();
  for (const n of nodes) {
    if (!n.stage) continue;
    const b = boxes.get(n.stage) ?? { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    boxes.set(n.stage, { x0: Math.min(b.x0, n.x), y0: Math.min(b.y0, n.y), x1: Math.max(b.x1, n.x + n.width), y1: Math.max(b.y1, n.y + n.height) });
  }
  const groups: GraphGroupView[] = [...boxes].map(([stage, b]) => ({
    stage,
    x: b.x0 - GROUP_PADDING,
    y: b.y0 - GROUP_PADDING - 14,
    width: b.x1 - b.x0 + 2 * GROUP_PADDING,
    height: b.y1 - b.y0 + 2 * GROUP_PADDING + 14,
  }));
  const size = g.graph();
  return { nodes, edges, groups, width: size.width ?? 0, height: size.height ?? 0 };
}
