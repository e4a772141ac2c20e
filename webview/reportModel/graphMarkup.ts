/**
 * A graph pane's SVG content as strings. Parsing markup is far cheaper than creating
 * thousands of elements one by one. The edges of a chunk share one <path> (and their
 * arrowheads another), so the element count grows with nodes only.
 */
import type { GraphView } from '../../src/shared/reportData';
import type { Rect } from './blockIndex';
import type { Chunks } from './chunks';
import type { Point, StageMembers, VisibleGraph } from './collapse';
import type { ErrorLevel } from './errorScale';
import { ERROR_LEVELS, worstLevel } from './errorScale';

const ARROW_LENGTH = 7;
const ARROW_HALF_WIDTH = 3.5;
/** Height of a stage label's click target, within the band the layout leaves above a stage's nodes. */
const GROUP_LABEL_HEIGHT = 18;
/** Rough width of one label character at the pane's 11px group-label size, for the label's click target. */
const LABEL_CHAR_WIDTH = 6.4;

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]);
}

/** One decimal is below a pixel at any zoom the pane allows, and keeps the markup short. */
const n = (v: number): string => String(Math.round(v * 10) / 10);

/** The edges as one path: one subpath per polyline. */
export function edgePath(edges: readonly { points: readonly Point[] }[]): string {
  const parts: string[] = [];
  for (const e of edges) {
    if (e.points.length < 2) continue;
    parts.push(`M${e.points.map((p) => `${n(p.x)} ${n(p.y)}`).join('L')}`);
  }
  return parts.join('');
}

/** A filled triangle at the end of every edge, pointing along its last segment. */
export function arrowPath(edges: readonly { points: readonly Point[] }[]): string {
  const parts: string[] = [];
  for (const e of edges) {
    const k = e.points.length;
    if (k < 2) continue;
    const tip = e.points[k - 1];
    const from = e.points[k - 2];
    const len = Math.hypot(tip.x - from.x, tip.y - from.y);
    if (len === 0) continue;
    const ux = (tip.x - from.x) / len;
    const uy = (tip.y - from.y) / len;
    const bx = tip.x - ux * ARROW_LENGTH;
    const by = tip.y - uy * ARROW_LENGTH;
    parts.push(
      `M${n(tip.x)} ${n(tip.y)}L${n(bx - uy * ARROW_HALF_WIDTH)} ${n(by + ux * ARROW_HALF_WIDTH)}L${n(bx + uy * ARROW_HALF_WIDTH)} ${n(by - ux * ARROW_HALF_WIDTH)}Z`,
    );
  }
  return parts.join('');
}

export const blockCountText = (count: number): string => `${count} block${count === 1 ? '' : 's'}`;

export interface MarkupInput {
  graph: GraphView;
  visible: VisibleGraph;
  chunks: Chunks;
  members: ReadonlyMap<string, StageMembers>;
  /** Error level per block name. */
  levels: ReadonlyMap<string, ErrorLevel>;
}

function nodeMarkup(graph: GraphView, i: number, levels: ReadonlyMap<string, ErrorLevel>): string {
  const node = graph.nodes[i];
  const level = node.block === undefined ? undefined : (levels.get(node.block) ?? 'none');
  const cls = level === undefined ? 'rl-node' : `rl-node rl-block-node rl-err-${level}`;
  // The level in words too, so the overlay does not rely on telling colours apart.
  const levelText = level === undefined ? '' : ERROR_LEVELS.find((l) => l.level === level)?.label;
  const title = [node.label, node.block === undefined ? '' : `block ${node.block}: ${levelText}`, node.detail ?? ''].filter(Boolean).join('\n');
  return (
    `<g class="${cls}" data-i="${i}">` +
    `<rect x="${n(node.x)}" y="${n(node.y)}" width="${n(node.width)}" height="${n(node.height)}" rx="4"/>` +
    `<text x="${n(node.x + node.width / 2)}" y="${n(node.y + node.height / 2)}">${escapeXml(node.label)}</text>` +
    (level === 'fail'
      ? `<circle class="rl-fail-mark" cx="${n(node.x + node.width)}" cy="${n(node.y)}" r="6"/><text class="rl-fail-mark-text" x="${n(node.x + node.width)}" y="${n(node.y)}">!</text>`
      : '') +
    `<title>${escapeXml(title)}</title></g>`
  );
}

export interface PaneMarkup {
  /** The <svg> content without the chunks: their places are empty <g data-chunk="k"> in the edge and node layers. */
  skeleton: string;
  /** What goes into chunk c's edge-layer and node-layer places. */
  chunkEdges(c: number): string;
  chunkNodes(c: number): string;
  /** Chunk c's node-layer content when zoomed out too far to read: boxes only. */
  chunkOverview(c: number): string;
}

/** `make`, remembering each chunk's result. */
function perChunk(make: (c: number) => string): (c: number) => string {
  const made: string[] = [];
  return (c) => (made[c] ??= make(c));
}

export function rectPath(r: Rect): string {
  return `M${n(r.x)} ${n(r.y)}h${n(r.width)}v${n(r.height)}h${n(-r.width)}Z`;
}

/** Node boxes as one path, for the zoomed-out overview. */
export function boxesPath(graph: GraphView, indices: Iterable<number>): string {
  const parts: string[] = [];
  for (const i of indices) parts.push(rectPath(graph.nodes[i]));
  return parts.join('');
}

/**
 * A chunk zoomed far out: one path per error level, no text, no per-node elements. A few
 * paths instead of hundreds of groups is what keeps "fit the whole graph" fast.
 */
export function overviewMarkup(graph: GraphView, indices: readonly number[], levels: ReadonlyMap<string, ErrorLevel>): string {
  const byClass = new Map<string, number[]>();
  for (const i of indices) {
    const block = graph.nodes[i].block;
    const cls = block === undefined ? 'rl-overview' : `rl-overview rl-err-${levels.get(block) ?? 'none'}`;
    const list = byClass.get(cls);
    if (list) list.push(i);
    else byClass.set(cls, [i]);
  }
  return [...byClass].map(([cls, list]) => `<path class="${cls}" d="${boxesPath(graph, list)}"/>`).join('');
}

/**
 * Markup for a pane's <svg>, in layers: stage backgrounds, edges, nodes, collapsed boxes,
 * stage labels. Chunks are kept apart as strings: the pane parses a chunk only while it
 * is near the view, because even undisplayed SVG costs style work whenever the pane is shown.
 * A chunk's string is made when it is first asked for: a pane starts with a few of a 5,000-node
 * graph's 35 chunks in view, and making all of them up front held the page for about 100 ms.
 * Nodes carry data-i (their position in graph.nodes); stage labels and boxes carry data-stage.
 */
export function graphMarkup({ graph, visible, chunks, members, levels }: MarkupInput): PaneMarkup {
  const out: string[] = [];
  const edgesOf = (ks: readonly number[]) => ks.map((k) => visible.edges[k]);
  const edgeGroup = (ks: readonly number[]) => `<path class="rl-edges" d="${edgePath(edgesOf(ks))}"/><path class="rl-arrows" d="${arrowPath(edgesOf(ks))}"/>`;
  const places = chunks.nodes.map((_, c) => `<g data-chunk="${c}"></g>`).join('');
  // Backgrounds under the edges, labels over them: stage boxes from a layered layout can touch or overlap, and edges cross the label band.
  out.push('<g class="rl-groups">');
  for (const g of visible.groups) out.push(`<rect class="rl-group-bg" x="${n(g.x)}" y="${n(g.y)}" width="${n(g.width)}" height="${n(g.height)}" rx="6"/>`);
  out.push(`</g><g class="rl-edge-layer">${places}`);
  if (chunks.staticEdges.length) out.push(`<g>${edgeGroup(chunks.staticEdges)}</g>`);
  out.push('</g>');
  out.push(`<g class="rl-node-layer">${places}</g><g class="rl-boxes">`);
  for (const b of visible.boxes) {
    const stage = escapeXml(b.stage);
    const level = worstLevel(b.blocks.map((name) => levels.get(name) ?? 'none'));
    out.push(
      `<g class="rl-box rl-err-${level}" data-stage="${stage}" tabindex="0" role="button" aria-expanded="false" aria-label="Stage ${stage}, ${blockCountText(b.blocks.length)}: expand">`,
      `<rect x="${n(b.x)}" y="${n(b.y)}" width="${n(b.width)}" height="${n(b.height)}" rx="6"/>`,
      `<text class="rl-box-title" x="${n(b.x + 10)}" y="${n(b.y + 16)}">▸ ${stage}</text>`,
      `<text class="rl-box-sub" x="${n(b.x + 10)}" y="${n(b.y + 34)}">${blockCountText(b.blocks.length)} · ${b.nodes} nodes</text>`,
      `<title>Stage ${stage} (collapsed): ${blockCountText(b.blocks.length)}, ${b.nodes} nodes. Click to expand.</title></g>`,
    );
  }
  // Labels last: a collapsed box can reach into the next stage's label band, and the label must stay clickable.
  out.push('</g><g class="rl-group-labels">');
  for (const g of visible.groups) {
    const stage = escapeXml(g.stage);
    const count = members.get(g.stage)?.blocks.length ?? 0;
    const label = `▾ ${g.stage} · ${blockCountText(count)}`;
    out.push(
      `<g class="rl-group-label" data-stage="${stage}" tabindex="0" role="button" aria-expanded="true" aria-label="Stage ${stage}, ${blockCountText(count)}: collapse">`,
      `<rect class="rl-hit" x="${n(g.x)}" y="${n(g.y)}" width="${n(Math.max(g.width, label.length * LABEL_CHAR_WIDTH + 12))}" height="${GROUP_LABEL_HEIGHT}" rx="6"/>`,
      `<text x="${n(g.x + 6)}" y="${n(g.y + GROUP_LABEL_HEIGHT / 2)}">${escapeXml(label)}</text></g>`,
    );
  }
  // The selected block's outline for the zoomed-out overview, where nodes have no elements of their own.
  out.push('</g><path class="rl-selection-outline" d=""/>');
  return {
    skeleton: out.join(''),
    chunkEdges: perChunk((c) => edgeGroup(chunks.edges[c])),
    chunkNodes: perChunk((c) => chunks.nodes[c].map((i) => nodeMarkup(graph, i, levels)).join('')),
    chunkOverview: perChunk((c) => overviewMarkup(graph, chunks.nodes[c], levels)),
  };
}
