/** The INT8 tab: what quantizing the deploy form costs, block by block, measured on request by the host. */
import type { Int8Block, Int8Report } from '../../src/shared/int8Data';
import type { Int8State } from '../../src/shared/protocol';
import { h } from '../dom';
import { button, progressRing } from '../toolkit';
import { errorBarSvg } from './charts';
import { bodyRow, fixedTable, headerRow, type TableColumn } from './table';

const BAR_WIDTH = 180;
const BAR_HEIGHT = 16;

const percent = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)} %` : String(x));

export class Int8Tab {
  readonly element: HTMLElement = h('div', { class: 'rl-int8', 'data-testid': 'int8-tab' });

  constructor(
    private readonly onMeasure: () => void,
    private readonly onActivateBlock: (block: string) => void,
    state: Int8State | undefined,
  ) {
    this.show(state);
  }

  show(state: Int8State | undefined): void {
    const intro = h(
      'p',
      { class: 'notice' },
      'Quantizes the deploy form as static post-training quantization does (int8 weights, uint8 activations calibrated on the check’s inputs) ',
      'and runs it beside the float deploy form. Each block is also quantized alone on its float input, with weights only and with activations only, ',
      'so its own error and its cause are known. Errors are ‖int8 − float‖ / ‖float‖; under 2 % is ordinary 8-bit rounding.',
    );
    if (state === undefined) {
      this.element.replaceChildren(
        intro,
        button('Measure INT8', () => this.onMeasure(), 'primary', { 'data-testid': 'int8-measure' }),
      );
    } else if (state.status === 'running') {
      this.element.replaceChildren(
        intro,
        h('div', { class: 'rl-waiting', 'aria-busy': 'true' }, progressRing(), h('p', { 'data-testid': 'int8-progress' }, state.message)),
      );
    } else if (state.status === 'error') {
      this.element.replaceChildren(
        intro,
        h('p', { class: 'notice error', 'data-testid': 'int8-error' }, state.message),
        button('Measure INT8 again', () => this.onMeasure(), 'secondary', { 'data-testid': 'int8-measure' }),
      );
    } else {
      this.element.replaceChildren(intro, ...this.results(state.report));
    }
  }

  private results(report: Int8Report): HTMLElement[] {
    const inputs =
      report.calibration.source === 'files'
        ? `${report.calibration.files.length} calibration file(s)`
        : `${report.inputs} random input(s) of [${report.shape.join(', ')}]`;
    const outputs = report.outputs.map((o) =>
      h(
        'li',
        {},
        `${o.name}, weights ${o.weights}: error ${percent(o.relError)}, cosine ${o.cosine.toFixed(5)}`,
        o.top1Agreement === null ? '' : `, top-1 agreement ${percent(o.top1Agreement)}`,
      ),
    );
    const max = Math.max(...report.blocks.map((b) => b.int8Error).filter(Number.isFinite), 0);
    const columns: TableColumn[] = [
      { title: 'Block', min: '10ch' },
      { title: 'INT8 error', min: `${BAR_WIDTH * 0.4}px` },
      { title: 'INT8', width: '8ch', numeric: true },
      { title: 'Weights only', width: '8ch', numeric: true },
      { title: 'Activations only', width: '11ch', numeric: true },
    ];
    const body = h('tbody');
    for (const b of report.blocks) body.append(...this.rows(columns, b, max));
    return [
      h('p', { 'data-testid': 'int8-summary' }, `Measured on ${inputs}, activation ranges by ${report.calibration.method}.`),
      h('p', { class: 'rl-muted' }, 'Bars: each block’s error with per-tensor weights; the tick, with per-channel weights. The numbers are per tensor.'),
      h('ul', { 'data-testid': 'int8-outputs' }, ...outputs),
      fixedTable(
        columns,
        { class: 'grid rl-table', 'data-testid': 'int8-table', 'aria-label': 'Blocks by INT8 error, worst first' },
        h('thead', {}, headerRow(columns)),
        body,
      ),
      button('Measure again', () => this.onMeasure(), 'secondary', { 'data-testid': 'int8-measure' }),
    ];
  }

  private rows(columns: TableColumn[], b: Int8Block, max: number): HTMLElement[] {
    const bar = errorBarSvg(
      b.int8Error,
      b.perChannel.int8Error,
      max,
      `${b.name}: INT8 error ${percent(b.int8Error)} with per-tensor weights, ${percent(b.perChannel.int8Error)} per channel`,
      BAR_WIDTH,
      BAR_HEIGHT,
    );
    const flagged = b.cause !== 'none';
    const row = bodyRow(
      columns,
      {
        key: b.name,
        label: h('span', { class: 'rl-block-name' }, b.name),
        cells: [bar, percent(b.int8Error), percent(b.weightError), percent(b.activationError)],
        attrs: { 'data-block': b.name, title: `Show ${b.name} in the graphs`, ...(flagged ? { class: 'rl-flagged-row' } : {}) },
      },
      this.onActivateBlock,
    );
    if (!flagged) return [row];
    return [row, h('tr', { class: 'rl-flag-note' }, h('td', { colspan: String(columns.length) }, `⚠ ${b.cause}: ${b.advice}`))];
  }
}
