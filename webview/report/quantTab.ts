/** The Quantization tab: how evenly each fused kernel's output channels are scaled, worst first. */
import type { ReportData } from '../../src/shared/reportData';
import { formatCount, formatError, formatTimes } from '../reportModel/format';
import { OUTLIER_THRESHOLD, quantRows, type QuantRow } from '../reportModel/quantization';
import { SlicedJob } from '../reportModel/slicedJob';
import { h, idleSlices } from '../dom';
import { sparklineSvg } from './charts';
import { bodyRow, fixedTable, headerRow, type TableColumn } from './table';

const SPARK_WIDTH = 160;
const SPARK_HEIGHT = 24;

/** Its rows, each with an SVG sparkline, are built a slice at a time (see SlicedJob). */
export class QuantTab {
  readonly element: HTMLElement;
  private readonly building: SlicedJob | undefined;

  constructor(report: ReportData, onActivateBlock: (block: string) => void) {
    const rows = quantRows(report.blocks);
    const flagged = rows.filter((r) => r.flagged).length;
    const intro = h(
      'p',
      { class: 'notice' },
      'Fusion folds each BatchNorm scale γ/σ and the 1×1 and identity branches into one kernel, so a few output channels can end up far larger than the rest. ',
      'That is where INT8 accuracy is lost after re-parameterization: one scale for the whole tensor spends its 256 levels on the outliers. ',
      `Kernels whose largest channel exceeds ${OUTLIER_THRESHOLD}× the median channel are flagged; quantize them per channel (or keep them in higher precision).`,
    );
    if (rows.length === 0) {
      this.element = h('div', { class: 'rl-quant' }, intro, h('p', { class: 'rl-muted' }, 'The report has no fused kernel statistics.'));
      return;
    }

    const columns: TableColumn[] = [
      { title: 'Block', min: '10ch' },
      { title: 'Stage', width: '6ch' },
      { title: 'Channels', width: '8.5ch', numeric: true },
      // Shares the spare width with the names; in a narrow panel the sparkline shrinks to fit.
      { title: 'Per-channel max |w|', min: `${SPARK_WIDTH * 0.6}px` },
      { title: 'Max |w|', width: '7ch', numeric: true },
      { title: 'Outlier ratio', width: '6.5ch', numeric: true },
    ];
    const body = h('tbody');
    const addRow = (r: QuantRow) => {
      const label = h('span', { class: 'rl-block-name' }, r.block);
      const spark = sparklineSvg(
        r.sparkline,
        `${r.block}: per-output-channel max |w|${r.sparkline.channelsPerBar > 1 ? `, ${r.sparkline.channelsPerBar} channels per bar` : ''}`,
        SPARK_WIDTH,
        SPARK_HEIGHT,
      );
      body.append(
        bodyRow(
          columns,
          {
            key: r.block,
            label,
            cells: [r.stage, formatCount(r.channels), spark, formatError(r.maxAbs), h('span', { class: r.flagged ? 'rl-fail' : '' }, formatTimes(r.ratio))],
            attrs: { 'data-block': r.block, title: `Show ${r.block} in the graphs`, ...(r.flagged ? { class: 'rl-flagged-row' } : {}) },
          },
          onActivateBlock,
        ),
      );
      // The explanation gets a full-width row of its own under the flagged kernel.
      if (r.flagged)
        body.append(
          h(
            'tr',
            { class: 'rl-flag-note' },
            h(
              'td',
              { colspan: String(columns.length) },
              `⚠ Outlier channel ${formatTimes(r.ratio)} the median: per-tensor INT8 will lose precision in ${r.block}; use per-channel scales.`,
            ),
          ),
        );
    };
    this.element = h(
      'div',
      { class: 'rl-quant' },
      intro,
      h(
        'p',
        { 'data-testid': 'quant-summary' },
        flagged
          ? `${flagged} of ${rows.length} fused kernels have outlier channels (ratio > ${OUTLIER_THRESHOLD}); the INT8 tab measures what that costs.`
          : `No fused kernel has a channel above ${OUTLIER_THRESHOLD}× the median. What INT8 costs each block, measured, is in the INT8 tab.`,
      ),
      fixedTable(
        columns,
        { class: 'grid rl-table', 'data-testid': 'quant-table', 'aria-label': 'Fused kernels by outlier ratio, worst first' },
        h('thead', {}, headerRow(columns)),
        body,
      ),
    );
    this.building = new SlicedJob(rows.length, (i) => addRow(rows[i]), idleSlices).start();
  }

  dispose(): void {
    this.building?.cancel();
  }
}
