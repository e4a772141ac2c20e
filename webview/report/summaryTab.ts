/** The Summary tab: how to load the deploy file RepLens wrote, costs before/after, per-output parity, the error histogram and the sortable per-block table. */
import type { LoadNote } from '../../src/shared/reportData';
import type { BlockReport, ReportData } from '../../src/shared/reportData';
import { nextSort, sortBlocks, type BlockSort, type BlockSortKey } from '../reportModel/blockSort';
import { costCards } from '../reportModel/costs';
import type { ErrorLevel } from '../reportModel/errorScale';
import { DASH, formatCosine, formatCount, formatError } from '../reportModel/format';
import { errorHistogram } from '../reportModel/histogram';
import { SlicedJob } from '../reportModel/slicedJob';
import { h, idleSlices } from '../dom';
import { button, dataGrid, type GridColumn } from '../toolkit';
import { histogramSvg } from './charts';
import { bodyRow, fixedTable, headerRow, type TableColumn } from './table';

export interface SummaryOptions {
  report: ReportData;
  levels: ReadonlyMap<string, ErrorLevel>;
  sort: BlockSort | null;
  selected: string | null;
  onSort(sort: BlockSort): void;
  onActivateBlock(block: string): void;
}

/** How long the Copy button says whether the copy worked before it reads Copy again. */
const COPY_FEEDBACK_MS = 2000;

/** What the deploy file is, how its family's code loads it, and those Python lines with a button that copies them. */
function loadSection(load: LoadNote): HTMLElement[] {
  const code = load.code.join('\n');
  let reset: ReturnType<typeof setTimeout> | undefined;
  const say = (label: string) => {
    copy.textContent = label;
    clearTimeout(reset);
    reset = setTimeout(() => (copy.textContent = 'Copy'), COPY_FEEDBACK_MS);
  };
  const copy = button(
    'Copy',
    () =>
      void navigator.clipboard.writeText(code).then(
        () => say('Copied'),
        () => say('Copy failed'),
      ),
    'secondary',
    { title: 'Copy the Python lines', 'data-testid': 'copy-load-code' },
  );
  return [
    h('h2', {}, 'Loading the deploy file'),
    h(
      'div',
      { class: 'rl-load', 'data-testid': 'load-note' },
      h('p', {}, `${load.what}.`),
      h('p', {}, `${load.how}:`),
      // Appended as text, never parsed: the lines hold file names.
      h('div', { class: 'rl-code' }, h('pre', {}, h('code', {}, code)), copy),
    ),
  ];
}

function costs(report: ReportData): HTMLElement {
  return h(
    'div',
    { class: 'rl-cards', 'data-testid': 'cost-cards' },
    ...costCards(report.forms).map((c) =>
      h(
        'div',
        { class: 'rl-card', title: c.title },
        h('div', { class: 'rl-card-label' }, c.label),
        h(
          'div',
          { class: 'rl-card-values' },
          h('span', { class: 'rl-before' }, c.before),
          h('span', { class: 'rl-arrow', 'aria-label': 'to' }, ' → '),
          h('strong', {}, c.after),
        ),
        h('div', { class: `rl-card-change${c.improved === true ? ' rl-better' : c.improved === false ? ' rl-worse' : ''}` }, c.change),
      ),
    ),
  );
}

function outputsGrid(report: ReportData): HTMLElement {
  const columns: GridColumn[] = [
    { title: 'Output', min: '8ch', fr: 2 },
    { title: 'Max abs', min: '6.5ch', fr: 1, numeric: true },
    { title: 'Max rel', min: '6.5ch', fr: 1, numeric: true },
    { title: 'Mean abs', min: '6.5ch', fr: 1, numeric: true },
    { title: 'Cosine', min: '8ch', fr: 1, numeric: true },
    { title: 'Top-1 agreement', min: '10ch', fr: 1, numeric: true },
  ];
  const rows = report.outputs.map((o) => [
    o.name,
    formatError(o.maxAbs),
    formatError(o.maxRel),
    formatError(o.meanAbs),
    formatCosine(o.cosine),
    o.top1Agreement === null ? DASH : `${(o.top1Agreement * 100).toFixed(1)} %`,
  ]);
  return dataGrid(columns, rows, { 'aria-label': 'Parity per model output', 'data-testid': 'outputs-grid' });
}

const SORT_TITLES: Record<BlockSortKey, string> = { name: 'Block', maxAbs: 'Max abs', maxRel: 'Max rel', cosine: 'Cosine', params: 'Params before → after' };

/**
 * The per-block table. Its first rows are built at once and the rest in slices (see SlicedJob),
 * so a long table does not hold the page. Sorting moves the existing rows instead of rebuilding them.
 */
class BlockTable {
  readonly element: HTMLTableElement;
  private readonly rows = new Map<string, HTMLTableRowElement>();
  private readonly head: HTMLTableSectionElement;
  private readonly body: HTMLTableSectionElement;
  private readonly building: SlicedJob;
  private sort: BlockSort | null;
  private selected: string | null;

  constructor(private readonly opts: SummaryOptions) {
    this.sort = opts.sort;
    this.selected = opts.selected;
    const columns = this.columns();
    const order = sortBlocks(opts.report.blocks, this.sort);
    this.head = h('thead', {}, headerRow(columns));
    this.body = h('tbody');
    this.element = fixedTable(
      columns,
      { class: 'grid rl-table', 'data-testid': 'block-table', 'aria-label': 'Parity per block; column headers sort' },
      this.head,
      this.body,
    );
    this.building = new SlicedJob(order.length, (i) => this.body.append(this.row(columns, order[i])), idleSlices).start();
  }

  select(block: string | null): void {
    this.selected = block;
    for (const [name, row] of this.rows) row.classList.toggle('rl-selected-row', name === block);
  }

  dispose(): void {
    this.building.cancel();
  }

  private columns(): TableColumn[] {
    const sortable = (key: BlockSortKey, width: Pick<TableColumn, 'width' | 'min'>, numeric: boolean): TableColumn => ({
      title: SORT_TITLES[key],
      ...width,
      numeric,
      sort: { state: this.sort?.key === key ? (this.sort.dir === 'asc' ? 'ascending' : 'descending') : 'none', onSort: () => this.sortBy(key) },
    });
    return [
      sortable('name', { min: '10ch' }, false),
      { title: 'Stage', width: '6ch' },
      sortable('maxAbs', { width: '6.5ch' }, true),
      sortable('maxRel', { width: '6.5ch' }, true),
      sortable('cosine', { width: '8ch' }, true),
      // Shares the spare width with the names; when narrow, '370,944 → 331,968' wraps at its spaces.
      { ...sortable('params', { min: '9ch' }, true), wraps: true },
      { title: 'Result', width: '6ch' },
    ];
  }

  private sortBy(key: BlockSortKey): void {
    // Every row must exist to be put in the new order.
    this.building.finish();
    this.sort = nextSort(this.sort, key);
    this.opts.onSort(this.sort);
    const columns = this.columns();
    this.head.replaceChildren(headerRow(columns));
    this.body.append(...sortBlocks(this.opts.report.blocks, this.sort).map((b) => this.rows.get(b.name)!));
    // The header was rebuilt; keep keyboard focus on the column just sorted.
    this.head.querySelectorAll<HTMLButtonElement>('button.rl-sort')[columns.filter((c) => c.sort).findIndex((c) => c.title === SORT_TITLES[key])]?.focus();
  }

  private row(columns: readonly TableColumn[], b: BlockReport): HTMLTableRowElement {
    const level = this.opts.levels.get(b.name) ?? 'none';
    const p = b.parity;
    const label = h('span', { class: 'rl-block-name' }, h('span', { class: `rl-dot rl-err-${level}`, 'aria-hidden': 'true' }), b.name);
    const result = p ? h('span', { class: p.pass ? 'rl-pass' : 'rl-fail' }, p.pass ? 'PASS' : '✖ FAIL') : DASH;
    const row = bodyRow(
      columns,
      {
        key: b.name,
        label,
        cells: [
          b.stage,
          formatError(p?.maxAbs),
          formatError(p?.maxRel),
          formatCosine(p?.cosine),
          `${formatCount(b.paramsBefore)} → ${formatCount(b.paramsAfter)}`,
          result,
        ],
        attrs: { 'data-block': b.name, title: `Show ${b.name} in the graphs` },
      },
      this.opts.onActivateBlock,
    );
    row.classList.toggle('rl-selected-row', b.name === this.selected);
    this.rows.set(b.name, row);
    return row;
  }
}

export class SummaryTab {
  readonly element: HTMLElement;
  private readonly table: BlockTable;

  constructor(opts: SummaryOptions) {
    const { report } = opts;
    this.table = new BlockTable(opts);
    const maxRels = report.blocks.flatMap((b) => (b.parity ? [b.parity.maxRel] : []));
    const failing = report.blocks.filter((b) => b.parity && !b.parity.pass).length;
    const histogram = maxRels.length
      ? h(
          'figure',
          { class: 'rl-figure' },
          histogramSvg(errorHistogram(maxRels), report.rtol),
          h(
            'figcaption',
            { class: 'rl-muted' },
            `Per-block max relative error, ${maxRels.length} blocks, log scale; the dashed line is rtol ${formatError(report.rtol)}.`,
          ),
        )
      : h('p', { class: 'rl-muted' }, 'No per-block numbers to plot.');
    this.element = h(
      'div',
      { class: 'rl-summary' },
      ...(report.load ? loadSection(report.load) : []),
      h('h2', {}, 'Cost, train form → deploy form'),
      costs(report),
      h('h2', {}, 'Outputs'),
      report.outputs.length ? outputsGrid(report) : h('p', { class: 'rl-muted' }, 'No outputs were compared.'),
      h('h2', {}, 'Error distribution'),
      histogram,
      h(
        'h2',
        {},
        `Blocks`,
        h(
          'span',
          { class: 'rl-muted rl-h-note' },
          ` ${report.blocks.length} blocks${failing ? `, ${failing} failing` : ''} · Enter or click a row to show it in the graphs`,
        ),
      ),
      this.table.element,
    );
  }

  select(block: string | null): void {
    this.table.select(block);
  }

  dispose(): void {
    this.table.dispose();
  }
}
