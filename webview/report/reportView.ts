/**
 * The report view: header with the verdict and export buttons, then Summary / Graphs /
 * Quantization / INT8 tabs. Selection is shared: a block picked in either graph, in a table or
 * by the host is highlighted in both graphs and described in the detail card.
 */
import type { ReportData } from '../../src/shared/reportData';
import { unpackReport, type HostMessage, type Int8State, type ReportRef, type SavedReportState, type WebviewMessage } from '../../src/shared/protocol';
import { errorLevel, type ErrorLevel } from '../reportModel/errorScale';
import { formatError } from '../reportModel/format';
import { PANES, restoreSavedState, type PaneId, type ReportTab, type ReportUiState, defaultUiState } from '../reportModel/viewState';
import { fileName, h, inNextTask } from '../dom';
import { badge, button, progressRing, selectTab, tabs } from '../toolkit';
import { legend } from './charts';
import { detailCard } from './detailCard';
import { GraphPane } from './graphPane';
import { Int8Tab } from './int8Tab';
import { QuantTab } from './quantTab';
import { SummaryTab } from './summaryTab';

/** The part of acquireVsCodeApi() the report uses. */
export interface WebviewApi {
  postMessage(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: unknown): void;
}

/** Pans and zooms come in bursts; the state is saved once they settle. */
const SAVE_DELAY_MS = 400;
/** Tabs not on screen are built when the page is idle, but no later than this after the report arrives. */
const IDLE_BUILD_TIMEOUT_MS = 2000;

type SelectionSource = PaneId | 'table' | 'host';

const PANE_TITLES: Record<PaneId, string> = { before: 'Before · train form', after: 'After · deploy form' };

/** Whether `block` is a block of the report or at least labels nodes in one of its graphs. */
function hasBlock(report: ReportData, block: string): boolean {
  return report.blocks.some((b) => b.name === block) || report.before.nodes.some((n) => n.block === block) || report.after.nodes.some((n) => n.block === block);
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() || path;
}

export class ReportView {
  private report: ReportData | undefined;
  /** Which report this view shows; saved instead of the report, which the host keeps on disk. */
  private ref: ReportRef | undefined;
  private ui: ReportUiState = defaultUiState();
  private levels = new Map<string, ErrorLevel>();
  private panes: GraphPane[] = [];
  private summary: SummaryTab | undefined;
  private quant: QuantTab | undefined;
  private int8: Int8Tab | undefined;
  /** The host's last word on the INT8 measurement of this report's model. */
  private int8State: Int8State | undefined;
  private tabStrip: HTMLElement | undefined;
  private detailHost: HTMLElement | undefined;
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  /** Builders of the tabs not built yet; a tab is built when first shown or when the page is idle. */
  private pendingTabs = new Map<ReportTab, () => void>();

  constructor(
    private readonly root: HTMLElement,
    private readonly api: WebviewApi,
  ) {}

  /** Waits for the host: it sends the report, read back from disk when the page was restored with the UI state saved here. */
  start(): void {
    const saved = restoreSavedState(this.api.getState());
    this.ref = saved.report;
    this.ui = saved.ui;
    this.progress(saved.report ? 'Loading the report…' : 'Waiting for the report…');
  }

  handle(message: HostMessage): void {
    switch (message.type) {
      case 'reportProgress':
        this.progress(message.message);
        break;
      case 'report': {
        // The e2e run measures the time to interactive from here (test/e2e/report-performance.e2e.mjs).
        performance.mark('replens-report-received');
        const report = unpackReport(message.report);
        this.ref = { id: message.storedAs, input: report.input, output: report.output };
        // The host forgets what it measured of an earlier report; so does the page.
        this.int8State = undefined;
        // A new run of the same model keeps the user's place; blocks that vanished are dropped on render.
        this.show(report, this.ui);
        this.saveNow();
        break;
      }
      case 'reportUnavailable':
        this.clear();
        this.root.replaceChildren(
          h(
            'section',
            { class: 'rl-report', 'data-testid': 'replens-report' },
            h('p', { class: 'notice error', 'data-testid': 'notice' }, `This report cannot be shown again: ${message.message}`),
            button('Check Parity again', () => this.rerun(), 'primary', { 'data-testid': 'rerun-report' }),
          ),
        );
        break;
      case 'int8':
        this.int8State = message.state;
        this.int8?.show(message.state);
        break;
      case 'revealBlock':
        if (this.report && hasBlock(this.report, message.block)) this.select(message.block, 'host');
        break;
      case 'error':
        this.clear();
        // An older report saved in the state would otherwise come back on restore, in place of this error.
        this.api.setState(undefined);
        this.root.replaceChildren(
          h('section', { class: 'rl-report', 'data-testid': 'replens-report' }, h('p', { class: 'notice error', 'data-testid': 'notice' }, message.message)),
        );
        break;
    }
  }

  private rerun(): void {
    this.api.postMessage({ type: 'rerunReport' });
    this.progress('Checking again…');
  }

  private progress(text: string): void {
    this.clear();
    this.root.replaceChildren(
      h(
        'section',
        { class: 'rl-report rl-waiting', 'data-testid': 'replens-report-progress', 'aria-busy': 'true' },
        progressRing(),
        h('p', { 'data-testid': 'progress-message' }, text),
      ),
    );
  }

  private clear(): void {
    for (const p of this.panes) p.dispose();
    this.panes = [];
    this.summary?.dispose();
    this.summary = undefined;
    this.quant?.dispose();
    this.quant = undefined;
    this.int8 = undefined;
    this.detailHost = undefined;
    this.pendingTabs.clear();
    this.report = undefined;
  }

  /** Builds `tab` now if it has not been built yet. */
  private ensureTab(tab: ReportTab): void {
    const build = this.pendingTabs.get(tab);
    if (!build) return;
    this.pendingTabs.delete(tab);
    build();
  }

  /** Builds the remaining tabs one per idle period, so switching to them later is instant. */
  private buildRestWhenIdle(report: ReportData): void {
    const next = this.pendingTabs.keys().next();
    if (next.done) return;
    requestIdleCallback(
      () => {
        if (this.report !== report) return;
        this.ensureTab(next.value);
        this.buildRestWhenIdle(report);
      },
      { timeout: IDLE_BUILD_TIMEOUT_MS },
    );
  }

  private show(report: ReportData, ui: ReportUiState): void {
    this.clear();
    this.report = report;
    this.ui = ui;
    this.levels = new Map(report.blocks.map((b) => [b.name, errorLevel(b.parity, report.rtol)]));
    if (ui.selectedBlock !== null && !hasBlock(report, ui.selectedBlock)) ui.selectedBlock = null;

    const hosts: Record<ReportTab, HTMLElement> = { summary: h('div', {}), graphs: h('div', {}), quantization: h('div', {}), int8: h('div', {}) };
    this.pendingTabs = new Map<ReportTab, () => void>([
      ['summary', () => hosts.summary.append(this.buildSummary(report))],
      ['graphs', () => hosts.graphs.append(this.buildGraphs(report))],
      ['quantization', () => hosts.quantization.append(this.buildQuantization(report))],
      ['int8', () => hosts.int8.append(this.buildInt8())],
    ]);
    this.tabStrip = tabs(
      [
        { id: 'summary', label: 'Summary', panel: hosts.summary },
        { id: 'graphs', label: 'Graphs', panel: hosts.graphs },
        { id: 'quantization', label: 'Quantization', panel: hosts.quantization },
        { id: 'int8', label: 'INT8', panel: hosts.int8 },
      ],
      ui.tab,
      (id) => {
        this.ui.tab = id as ReportTab;
        this.ensureTab(this.ui.tab);
        this.saveSoon();
      },
    );
    this.root.replaceChildren(h('section', { class: 'rl-report', 'data-testid': 'replens-report' }, this.header(report), this.tabStrip));
    // The tab on screen is built in a task of its own, so that taking in the report does not hold the page that long.
    inNextTask(() => {
      if (this.report !== report) return;
      this.ensureTab(this.ui.tab);
      this.buildRestWhenIdle(report);
    });
  }

  private buildSummary(report: ReportData): HTMLElement {
    this.summary = new SummaryTab({
      report,
      levels: this.levels,
      sort: this.ui.sort,
      selected: this.ui.selectedBlock,
      onSort: (sort) => {
        this.ui.sort = sort;
        this.saveSoon();
      },
      onActivateBlock: (block) => this.select(block, 'table'),
    });
    return this.summary.element;
  }

  private buildQuantization(report: ReportData): HTMLElement {
    this.quant = new QuantTab(report, (block) => this.select(block, 'table'));
    return this.quant.element;
  }

  private buildInt8(): HTMLElement {
    this.int8 = new Int8Tab(
      () => this.api.postMessage({ type: 'measureInt8' }),
      (block) => this.select(block, 'table'),
      this.int8State,
    );
    return this.int8.element;
  }

  private buildGraphs(report: ReportData): HTMLElement {
    this.panes = PANES.map(
      (id) =>
        new GraphPane({
          id,
          title: PANE_TITLES[id],
          graph: report[id],
          levels: this.levels,
          collapsed: this.ui.collapsed[id],
          viewport: this.ui.viewports[id],
          onSelect: (block) => this.select(block, id),
          onViewChange: () => this.saveSoon(),
        }),
    );
    for (const p of this.panes) p.highlight(this.ui.selectedBlock);
    this.detailHost = h('div', { class: 'rl-detail-host' });
    this.renderDetail();
    return h('div', { class: 'rl-graphs' }, legend(), h('div', { class: 'rl-graphs-main' }, ...this.panes.map((p) => p.element), this.detailHost));
  }

  private header(r: ReportData): HTMLElement {
    // A check that could not run is an error, not a neutral state: red, with its reason first.
    const verdict = r.pass === null ? 'ERROR' : r.pass ? 'PASS' : 'FAIL';
    const cls = r.pass ? 'pass' : 'fail';
    const checked =
      r.pass === null
        ? []
        : [`${r.inputs} input${r.inputs === 1 ? '' : 's'} of shape ${r.shape.join('×')}`, `atol ${formatError(r.atol)}`, `rtol ${formatError(r.rtol)}`];
    const sub = [r.family, r.architecture, ...(r.weights ? [`weights '${r.weights.key}'`] : []), ...checked];
    const head = h(
      'header',
      { class: 'rl-report-head' },
      h(
        'div',
        { class: 'title' },
        h('h1', { title: r.input }, fileName(baseName(r.input))),
        badge(`Parity ${verdict}`, { class: `rl-badge-${cls}`, 'data-testid': 'verdict' }),
      ),
      h(
        'div',
        { class: 'rl-actions' },
        button('Export JSON', () => this.api.postMessage({ type: 'exportReport', format: 'json' }), 'secondary', { 'data-testid': 'export-json' }),
        button('Export Markdown', () => this.api.postMessage({ type: 'exportReport', format: 'markdown' }), 'secondary', { 'data-testid': 'export-markdown' }),
      ),
      // Each fact wraps as a whole, so '1.00e-4' never splits at its minus sign.
      h('p', { class: 'rl-muted rl-sub' }, ...sub.flatMap((text, i) => [i ? ' · ' : '', h('span', { class: 'rl-nowrap' }, text)])),
      h('p', { class: 'rl-muted rl-sub' }, 'Deploy file: ', r.output ? fileName(r.output) : 'not written (checked in memory)'),
    );
    if (r.pass === null)
      head.append(h('p', { class: 'notice error', 'data-testid': 'parity-error' }, `Parity could not run: ${r.parityError ?? 'no reason was given'}`));
    if (r.advice)
      head.append(
        h('p', { class: r.pass === null ? 'rl-sub' : 'notice error', 'data-testid': 'parity-advice' }, r.pass === null ? r.advice : `What next: ${r.advice}`),
      );
    if (r.toleranceBasis) head.append(h('p', { class: 'rl-muted rl-sub', 'data-testid': 'tolerance-basis' }, `Tolerance: ${r.toleranceBasis}.`));
    return head;
  }

  private select(block: string | null, source: SelectionSource): void {
    // From a table or the host the graphs are not on screen yet; going there is the point of the action.
    const toGraphs = block !== null && (source === 'table' || source === 'host');
    if (toGraphs) this.ensureTab('graphs');
    this.ui.selectedBlock = block;
    this.panes.forEach((pane, i) => {
      pane.highlight(block);
      if (block !== null && PANES[i] !== source) pane.reveal(block);
    });
    this.summary?.select(block);
    this.renderDetail();
    if (block !== null && source !== 'host') this.api.postMessage({ type: 'selectBlock', block });
    if (toGraphs && this.tabStrip) {
      selectTab(this.tabStrip, 'graphs');
      this.ui.tab = 'graphs';
    }
    this.saveSoon();
  }

  private renderDetail(): void {
    if (!this.detailHost || !this.report || this.panes.length < 2) return;
    const name = this.ui.selectedBlock;
    const card = detailCard(
      name === null
        ? null
        : {
            name,
            block: this.report.blocks.find((b) => b.name === name),
            level: this.levels.get(name) ?? 'none',
            rtol: this.report.rtol,
            nodesBefore: this.panes[0].nodeCount(name),
            nodesAfter: this.panes[1].nodeCount(name),
          },
    );
    this.detailHost.replaceChildren(card);
  }

  private saveSoon(): void {
    if (this.saveTimer !== undefined) return;
    this.saveTimer = setTimeout(() => this.saveNow(), SAVE_DELAY_MS);
  }

  private saveNow(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (!this.report || !this.ref) return;
    this.panes.forEach((pane, i) => {
      const v = pane.viewport;
      if (v) this.ui.viewports[PANES[i]] = v;
      this.ui.collapsed[PANES[i]] = pane.collapsed;
    });
    const state: SavedReportState = { report: this.ref, ui: this.ui };
    this.api.setState(state);
  }
}
