/**
 * One graph pane: the SVG drawing of a laid-out graph with pan, zoom, collapsible stages
 * and block selection.
 *
 * Speed with thousands of nodes comes from three things. The markup is built once per
 * collapse state, a chunk's when it is first drawn. Nodes and edges are cut into horizontal
 * chunks that are parsed into the page only while near the view (even hidden SVG costs style
 * work each time a tab is shown). And panning and zooming set one CSS transform on the <svg>,
 * at most once per animation frame — not the viewBox, because Chrome lays SVG text out again
 * whenever the viewBox scale changes, which made every wheel step re-measure every label on screen.
 */
import type { GraphView } from '../../src/shared/reportData';
import { graphNodeCount } from '../reportModel/costs';
import { blocksInVisualOrder, indexGraphBlocks, stepBlock, type GraphBlockIndex, type Rect } from '../reportModel/blockIndex';
import { chunkGraph, chunksInView, nodeAt, type Chunks } from '../reportModel/chunks';
import { collapseGraph, stageMembers, type StageMembers } from '../reportModel/collapse';
import type { ErrorLevel } from '../reportModel/errorScale';
import { formatCount } from '../reportModel/format';
import { graphMarkup, rectPath, type PaneMarkup } from '../reportModel/graphMarkup';
import {
  centerOn,
  fitRect,
  initialViewport,
  LABEL_MIN_SCALE,
  panBy,
  paneTransformOf,
  viewBoxOf,
  zoomAt,
  type Size,
  type Viewport,
} from '../reportModel/viewport';
import { h, inNextTask } from '../dom';
import { button } from '../toolkit';

const SVG_NS = 'http://www.w3.org/2000/svg';
/** Screen pixels of the selection outline on the zoomed-out overview, where a block can be smaller than a pixel. */
const OUTLINE_PX = 4;
/** Pointer travel (px) that turns a press into a drag, so a slightly shaky click still selects. */
const DRAG_THRESHOLD = 4;
const ZOOM_STEP = 1.25;

export interface GraphPaneOptions {
  id: string;
  title: string;
  graph: GraphView;
  levels: ReadonlyMap<string, ErrorLevel>;
  collapsed: readonly string[];
  viewport?: Viewport;
  /** A block node was clicked or activated by key; null on Escape. */
  onSelect(block: string | null): void;
  /** The viewport or the collapsed stages changed (for saving the view state). */
  onViewChange(): void;
}

/** How a chunk is in the page: not at all, in full, or as the zoomed-out overview. */
type ChunkMode = 'none' | 'near' | 'far';

interface Chunk {
  bounds: Rect;
  edgePlace: Element;
  nodePlace: Element;
  mode: ChunkMode;
}

export class GraphPane {
  readonly element: HTMLElement;
  private readonly svg: SVGSVGElement;
  private readonly body: HTMLElement;
  private readonly graph: GraphView;
  private readonly index: GraphBlockIndex;
  private readonly members: Map<string, StageMembers>;
  private readonly collapsedStages: Set<string>;
  private readonly resize: ResizeObserver;
  private size: Size = { width: 0, height: 0 };
  private view: Viewport | undefined;
  private frame = 0;
  private far: boolean | undefined;
  private markup: PaneMarkup = { skeleton: '', chunkEdges: () => '', chunkNodes: () => '', chunkOverview: () => '' };
  private chunkSets: Chunks = { nodes: [], edges: [], staticEdges: [], bounds: [] };
  private chunks: Chunk[] = [];
  private outline: Element | null = null;
  /** Chunk of each drawn node, by position in graph.nodes. */
  private chunkOfNode = new Map<number, number>();
  /** Blocks whose nodes are drawn (not inside a collapsed stage), in visual order, for arrow keys. */
  private walkOrder: string[] = [];
  private selected: string | null = null;
  /** The block the arrow keys last moved to. */
  private cursor: string | null = null;
  /** A reveal asked for while the pane had no size (its tab hidden), done when it gets one. */
  private pendingReveal: string | null = null;
  private drawn = false;
  /** Cancels the first drawing, which waits for the pane to be shown (see onResize). */
  private cancelFirstDraw: (() => void) | undefined;

  constructor(private readonly opts: GraphPaneOptions) {
    this.graph = opts.graph;
    this.index = indexGraphBlocks(opts.graph);
    this.members = stageMembers(opts.graph);
    this.collapsedStages = new Set(opts.collapsed.filter((s) => this.members.has(s)));
    this.view = opts.viewport;

    this.svg = document.createElementNS(SVG_NS, 'svg');
    this.svg.classList.add('rl-graph');
    const width = Math.max(1, opts.graph.width);
    const height = Math.max(1, opts.graph.height);
    this.svg.setAttribute('width', String(width));
    this.svg.setAttribute('height', String(height));
    this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.body = h('div', {
      class: 'rl-pane-body',
      tabindex: '0',
      role: 'group',
      'aria-label': `${opts.title}: ${formatCount(graphNodeCount(opts.graph))} nodes. Arrow keys move between blocks, Enter selects, Escape clears, + and − zoom, 0 fits.`,
    });
    this.body.append(this.svg);

    const tools = h(
      'div',
      { class: 'rl-pane-tools' },
      button('−', () => this.zoomBy(1 / ZOOM_STEP), 'secondary', { 'aria-label': `Zoom out (${opts.title})`, title: 'Zoom out (−)' }),
      button('+', () => this.zoomBy(ZOOM_STEP), 'secondary', { 'aria-label': `Zoom in (${opts.title})`, title: 'Zoom in (+)' }),
      button('Fit', () => this.fit(), 'secondary', { 'aria-label': `Fit the whole graph (${opts.title})`, title: 'Fit the whole graph (0)' }),
    );
    const stats = `${formatCount(graphNodeCount(opts.graph))} nodes · ${formatCount(this.index.nodes.size)} blocks`;
    this.element = h(
      'section',
      { class: 'rl-pane', 'data-testid': `graph-${opts.id}`, 'aria-label': opts.title },
      h('header', { class: 'rl-pane-head' }, h('h3', {}, opts.title), h('span', { class: 'rl-muted' }, stats), tools),
      this.body,
    );

    this.listen();
    this.resize = new ResizeObserver(() => this.onResize());
    this.resize.observe(this.body);
  }

  get viewport(): Viewport | undefined {
    return this.view;
  }

  get collapsed(): string[] {
    return [...this.collapsedStages];
  }

  /** How many of this graph's nodes belong to `block`. */
  nodeCount(block: string): number {
    return this.index.nodes.get(block)?.length ?? 0;
  }

  dispose(): void {
    this.resize.disconnect();
    this.cancelFirstDraw?.();
    cancelAnimationFrame(this.frame);
  }

  /** Marks the nodes of `block` (or nothing) as selected. */
  highlight(block: string | null): void {
    for (const el of this.drawnNodes(this.selected)) el.classList.remove('rl-selected');
    this.selected = block;
    if (block !== null) this.cursor = block;
    for (const el of this.drawnNodes(block)) el.classList.add('rl-selected');
    this.svg.classList.toggle('rl-has-selection', block !== null && this.index.nodes.has(block));
    const bounds = block === null ? undefined : this.index.bounds.get(block);
    const hidden = block === null || this.collapsedStages.has(this.stageOf(block) ?? '');
    this.outline?.setAttribute('d', bounds && !hidden ? rectPath(bounds) : '');
  }

  /** Brings `block` into view, expanding its stage if that is collapsed. */
  reveal(block: string): void {
    const rect = this.index.bounds.get(block);
    if (!rect) return;
    const stage = this.stageOf(block);
    if (stage !== undefined && this.collapsedStages.delete(stage)) {
      if (this.drawn) this.draw();
      this.opts.onViewChange();
    }
    if (!this.hasSize() || !this.view) {
      this.pendingReveal = block;
      return;
    }
    this.setView(centerOn(this.view, rect, this.size));
  }

  private hasSize(): boolean {
    return this.size.width > 0 && this.size.height > 0;
  }

  private stageOf(block: string): string | undefined {
    return this.graph.nodes[this.index.nodes.get(block)?.[0] ?? -1]?.stage;
  }

  /** The elements of `block`'s nodes that are in the page now (their chunks near the view). */
  private drawnNodes(block: string | null): Element[] {
    const out: Element[] = [];
    for (const i of this.index.nodes.get(block ?? '') ?? []) {
      const c = this.chunkOfNode.get(i);
      const el = c === undefined || this.chunks[c].mode !== 'near' ? null : this.chunks[c].nodePlace.querySelector(`[data-i="${i}"]`);
      if (el) out.push(el);
    }
    return out;
  }

  private draw(): void {
    this.drawn = true;
    const visible = collapseGraph(this.graph, this.collapsedStages);
    const chunks = chunkGraph(this.graph, visible);
    this.markup = graphMarkup({ graph: this.graph, visible, chunks, members: this.members, levels: this.opts.levels });
    this.svg.innerHTML = this.markup.skeleton;
    const edgePlaces = this.svg.querySelectorAll('.rl-edge-layer > [data-chunk]');
    const nodePlaces = this.svg.querySelectorAll('.rl-node-layer > [data-chunk]');
    this.chunkSets = chunks;
    this.chunks = chunks.bounds.map((bounds, c) => ({ bounds, edgePlace: edgePlaces[c], nodePlace: nodePlaces[c], mode: 'none' }));
    this.outline = this.svg.querySelector('.rl-selection-outline');
    this.chunkOfNode = new Map();
    chunks.nodes.forEach((list, c) => list.forEach((i) => this.chunkOfNode.set(i, c)));
    this.walkOrder = blocksInVisualOrder(this.index).filter((b) => !this.collapsedStages.has(this.stageOf(b) ?? ''));
    this.far = undefined;
    this.highlight(this.selected);
    this.applyView();
  }

  private setChunkMode(c: number, mode: ChunkMode): void {
    const chunk = this.chunks[c];
    if (chunk.mode === mode) return;
    // Keep the keyboard in the pane when the focused node is dropped (scrolled far away, or zoomed out to the overview).
    if (chunk.nodePlace.contains(document.activeElement)) this.body.focus({ preventScroll: true });
    if (mode === 'none') {
      chunk.edgePlace.replaceChildren();
      chunk.nodePlace.replaceChildren();
    } else {
      if (chunk.mode === 'none') chunk.edgePlace.innerHTML = this.markup.chunkEdges(c);
      chunk.nodePlace.innerHTML = mode === 'near' ? this.markup.chunkNodes(c) : this.markup.chunkOverview(c);
    }
    chunk.mode = mode;
    if (mode === 'near') for (const el of this.drawnNodes(this.selected)) el.classList.add('rl-selected');
  }

  private toggleStage(stage: string): void {
    if (!this.collapsedStages.delete(stage)) this.collapsedStages.add(stage);
    this.draw();
    // Keep the keyboard where it was: on the same stage's label or box.
    const target = Array.from(this.svg.querySelectorAll<SVGGElement>('[data-stage]')).find((el) => el.getAttribute('data-stage') === stage);
    target?.focus({ preventScroll: true });
    this.opts.onViewChange();
  }

  private onResize(): void {
    const r = this.body.getBoundingClientRect();
    this.size = { width: r.width, height: r.height };
    if (!this.hasSize()) return;
    if (!this.view) this.view = initialViewport(this.graph, this.size);
    const revealed = this.pendingReveal === null ? undefined : this.index.bounds.get(this.pendingReveal);
    this.pendingReveal = null;
    if (revealed) {
      this.view = centerOn(this.view, revealed, this.size);
      this.opts.onViewChange();
    }
    if (this.drawn) this.applyView();
    // Drawn when first shown, in a task of its own: the one that showed the tab has that to lay out
    // (and the other pane to draw), and a pane never shown is never drawn.
    else this.cancelFirstDraw ??= inNextTask(() => this.draw());
  }

  /** Changes the view on the next frame, or now when something must be on screen at once (focus needs drawn elements). */
  private setView(v: Viewport, now = false): void {
    this.view = v;
    if (now) {
      this.applyView();
      this.opts.onViewChange();
      return;
    }
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.applyView();
      this.opts.onViewChange();
    });
  }

  private applyView(): void {
    if (!this.view || !this.hasSize()) return;
    const t = paneTransformOf(this.view, this.size);
    this.svg.style.transform = `translate(${t.x}px, ${t.y}px) scale(${t.scale})`;
    // Zoomed out past legibility, chunks are drawn as overviews and the remaining labels hidden.
    const far = this.view.scale < LABEL_MIN_SCALE;
    if (far !== this.far) {
      this.far = far;
      this.svg.classList.toggle('rl-far', far);
    }
    // In graph units, so the outline keeps its screen width at any zoom (the CSS transform scales strokes too).
    if (far) this.outline?.setAttribute('stroke-width', String(OUTLINE_PX / this.view.scale));
    chunksInView(
      this.chunks.map((c) => c.bounds),
      viewBoxOf(this.view, this.size),
    ).forEach((show, c) => this.setChunkMode(c, show ? (far ? 'far' : 'near') : 'none'));
  }

  private zoomBy(factor: number): void {
    if (!this.view || !this.hasSize()) return;
    this.setView(zoomAt(this.view, factor, this.size.width / 2, this.size.height / 2, this.graph, this.size));
  }

  private fit(): void {
    if (!this.hasSize()) return;
    this.setView(fitRect({ x: 0, y: 0, width: this.graph.width, height: this.graph.height }, this.size));
  }

  /** Moves the keyboard to `block`: centres it, then focuses its first node. */
  private focusBlock(block: string): void {
    const rect = this.index.bounds.get(block);
    if (!rect || !this.view || !this.hasSize()) return;
    this.cursor = block;
    this.setView(centerOn(this.view, rect, this.size), true);
    const el = this.drawnNodes(block)[0] as SVGGElement | undefined;
    if (!el) return;
    el.setAttribute('tabindex', '-1');
    el.setAttribute('aria-label', `Block ${block}`);
    el.focus({ preventScroll: true });
  }

  private listen(): void {
    let drag: { id: number; x: number; y: number; start: Viewport; moved: boolean } | undefined;
    let suppressClick = false;
    // On the pane, not the <svg>: zoomed out, the drawing covers only part of it.
    this.body.addEventListener('pointerdown', (e) => {
      if (e.button !== 0 || !this.view) return;
      drag = { id: e.pointerId, x: e.clientX, y: e.clientY, start: this.view, moved: false };
    });
    this.body.addEventListener('pointermove', (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved) {
        if (Math.hypot(dx, dy) < DRAG_THRESHOLD) return;
        // Captured only once it is a drag: capturing on press would retarget the click away from the node.
        drag.moved = true;
        this.body.setPointerCapture(e.pointerId);
        this.body.classList.add('rl-dragging');
      }
      this.setView(panBy(drag.start, dx, dy));
    });
    const end = (e: PointerEvent) => {
      if (!drag || e.pointerId !== drag.id) return;
      suppressClick = drag.moved;
      drag = undefined;
      this.body.classList.remove('rl-dragging');
    };
    this.body.addEventListener('pointerup', end);
    this.body.addEventListener('pointercancel', end);
    this.body.addEventListener('click', (e) => {
      if (suppressClick) {
        suppressClick = false;
        return;
      }
      if (this.activate(e.target as Element) || !this.view) return;
      // The zoomed-out overview has no element per node: find the node under the pointer by its box.
      const r = this.body.getBoundingClientRect();
      const t = paneTransformOf(this.view, this.size);
      const i = nodeAt(this.graph, this.chunkSets, (e.clientX - r.left - t.x) / t.scale, (e.clientY - r.top - t.y) / t.scale);
      const block = i === undefined ? undefined : this.graph.nodes[i].block;
      if (block !== undefined) this.opts.onSelect(block);
    });
    this.body.addEventListener(
      'wheel',
      (e) => {
        if (!this.view || !this.hasSize()) return;
        e.preventDefault();
        const unit = e.deltaMode === WheelEvent.DOM_DELTA_LINE ? 16 : e.deltaMode === WheelEvent.DOM_DELTA_PAGE ? this.size.height : 1;
        const r = this.body.getBoundingClientRect();
        this.setView(zoomAt(this.view, Math.exp(-e.deltaY * unit * 0.0015), e.clientX - r.left, e.clientY - r.top, this.graph, this.size));
      },
      { passive: false },
    );
    this.body.addEventListener('keydown', (e) => this.onKey(e));
    // The pane pans with a transform and has no scroll of its own, but the browser scrolls it anyway to
    // show an element (find in page, a focus, a scripted click): turn that into a pan, or the chunks
    // drawn would be those of a view the pane no longer shows.
    this.body.addEventListener('scroll', () => {
      const { scrollLeft: dx, scrollTop: dy } = this.body;
      if ((dx === 0 && dy === 0) || !this.view) return;
      this.body.scrollTo(0, 0);
      this.setView(panBy(this.view, -dx, -dy), true);
    });
  }

  /** A click or Enter/Space on `target`: toggle a stage, or select the block of a node. */
  private activate(target: Element): boolean {
    const stageEl = target.closest('[data-stage]');
    if (stageEl) {
      this.toggleStage(stageEl.getAttribute('data-stage') ?? '');
      return true;
    }
    const nodeEl = target.closest('.rl-block-node');
    const block = nodeEl && this.graph.nodes[Number(nodeEl.getAttribute('data-i'))]?.block;
    if (!block) return false;
    this.opts.onSelect(block);
    return true;
  }

  private onKey(e: KeyboardEvent): void {
    switch (e.key) {
      case 'Enter':
      case ' ':
        if (this.activate(e.target as Element)) break;
        // On the pane itself: select the block the arrow keys are on.
        if (this.cursor === null) return;
        this.opts.onSelect(this.cursor);
        break;
      case 'ArrowDown':
      case 'ArrowRight':
      case 'ArrowUp':
      case 'ArrowLeft': {
        const next = stepBlock(this.walkOrder, this.cursor, e.key === 'ArrowDown' || e.key === 'ArrowRight' ? 1 : -1);
        if (next) this.focusBlock(next);
        break;
      }
      case '+':
      case '=':
        this.zoomBy(ZOOM_STEP);
        break;
      case '-':
        this.zoomBy(1 / ZOOM_STEP);
        break;
      case '0':
        this.fit();
        break;
      case 'Escape':
        this.opts.onSelect(null);
        break;
      default:
        return;
    }
    e.preventDefault();
  }
}
