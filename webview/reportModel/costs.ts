/** The cost cards of the summary: each quantity in train form, deploy form, and the change. */
import type { ReportData } from '../../src/shared/reportData';
import { formatCompact } from '../../src/shared/format';
import { DASH, formatChange, formatCount, formatFileSize, formatMs, formatTimes, ratioOf } from './format';

export interface CostCard {
  label: string;
  before: string;
  after: string;
  /** e.g. '−42 %' or '1.84× faster'. */
  change: string;
  /** Whether deploy form is better than train form on this count; null when unknown or equal. */
  improved: boolean | null;
  /** Exact numbers for the tooltip. */
  title: string;
}

function better(before: number | null, after: number | null): boolean | null {
  if (before === null || after === null || before === after) return null;
  return after < before;
}

/** A laid-out graph's own nodes, the count the cost cards give: the input and output boxes are drawn, not counted. */
export function graphNodeCount(graph: ReportData['before']): number {
  return graph.nodes.filter((n) => n.op !== 'Input' && n.op !== 'Output').length;
}

export function costCards(forms: ReportData['forms']): CostCard[] {
  const { train, deploy } = forms;
  const counted = (label: string, before: number, after: number): CostCard => ({
    label,
    before: formatCompact(before),
    after: formatCompact(after),
    change: formatChange(before, after),
    improved: better(before, after),
    title: `${formatCount(before)} → ${formatCount(after)}`,
  });
  const speedup = ratioOf(train.latencyMs, deploy.latencyMs);
  const sizes = train.fileBytes !== null && deploy.fileBytes !== null ? ([train.fileBytes, deploy.fileBytes] as const) : null;
  return [
    counted('Parameters', train.params, deploy.params),
    counted('MACs', train.macs, deploy.macs),
    counted('Graph nodes', train.nodes, deploy.nodes),
    {
      label: 'Latency (median)',
      before: formatMs(train.latencyMs),
      after: formatMs(deploy.latencyMs),
      change:
        speedup === null
          ? DASH
          : formatTimes(speedup) === formatTimes(1) || formatTimes(1 / speedup) === formatTimes(1)
            ? 'the same'
            : speedup > 1
              ? `${formatTimes(speedup)} faster`
              : `${formatTimes(1 / speedup)} slower`,
      improved: better(train.latencyMs, deploy.latencyMs),
      title: speedup === null ? 'Latency was not measured for both forms.' : `speed-up ${speedup.toFixed(3)}×`,
    },
    {
      label: 'File size',
      before: formatFileSize(train.fileBytes),
      after: formatFileSize(deploy.fileBytes),
      change: sizes ? formatChange(sizes[0], sizes[1]) : DASH,
      improved: sizes ? better(sizes[0], sizes[1]) : null,
      title: sizes ? `${formatCount(sizes[0])} → ${formatCount(sizes[1])} bytes` : 'No deploy file was written.',
    },
  ];
}
