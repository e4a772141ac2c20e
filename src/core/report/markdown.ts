import type { LoadNote } from '../../shared/reportData';
import type { ReportData } from '../../shared/reportData';

const num = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? '–' : Number.isFinite(v) ? v.toExponential(digits - 1) : String(v));
const count = (v: number) => v.toLocaleString('en-US');

/** The load note as a section: what the file is, how it loads, and the lines in a fence no backtick run in them can close. */
function loadSection(load: LoadNote): string[] {
  const longest = Math.max(0, ...load.code.flatMap((line) => line.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return ['## Loading the deploy file', '', `${load.what}.`, '', `${load.how}:`, '', `${fence}python`, ...load.code, fence, ''];
}

/** The report as Markdown, numbers included, for pasting into an issue or a PR. */
export function reportMarkdown(r: ReportData): string {
  const verdict = r.pass === null ? `not run: ${r.parityError ?? 'unknown reason'}` : r.pass ? 'PASS' : 'FAIL';
  const lines = [
    `# RepLens report: ${r.input}`,
    '',
    `- deploy file: ${r.output ?? '(in memory)'}`,
    `- family: ${r.family}, architecture: ${r.architecture}`,
    ...(r.weights ? [`- weights: '${r.weights.key}', ${r.weights.reason === 'chosen' ? 'as asked' : r.weights.reason}`] : []),
    r.pass === null
      ? `- parity: **${verdict}**`
      : `- parity: **${verdict}** (atol ${r.atol}, rtol ${r.rtol}, ${r.inputs} inputs of shape ${r.shape.join('×')})`,
    ...(r.advice ? [`- what next: ${r.advice}`] : []),
    ...(r.toleranceBasis ? [`- tolerance: ${r.toleranceBasis}`] : []),
    '',
    ...(r.load ? loadSection(r.load) : []),
    '## Forms',
    '',
    '| | train | deploy |',
    '|---|---:|---:|',
    `| parameters | ${count(r.forms.train.params)} | ${count(r.forms.deploy.params)} |`,
    `| MACs | ${count(r.forms.train.macs)} | ${count(r.forms.deploy.macs)} |`,
    `| nodes | ${count(r.forms.train.nodes)} | ${count(r.forms.deploy.nodes)} |`,
    `| latency (ms, median) | ${r.forms.train.latencyMs?.toFixed(2) ?? '–'} | ${r.forms.deploy.latencyMs?.toFixed(2) ?? '–'} |`,
    `| file size (bytes) | ${r.forms.train.fileBytes === null ? '–' : count(r.forms.train.fileBytes)} | ${r.forms.deploy.fileBytes === null ? '–' : count(r.forms.deploy.fileBytes)} |`,
    '',
    '## Outputs',
    '',
    '| output | max abs | max rel | mean abs | cosine | top-1 agreement |',
    '|---|---:|---:|---:|---:|---:|',
    ...r.outputs.map(
      (o) =>
        `| ${o.name} | ${num(o.maxAbs)} | ${num(o.maxRel)} | ${num(o.meanAbs)} | ${o.cosine.toFixed(6)} | ${o.top1Agreement === null ? '–' : `${(o.top1Agreement * 100).toFixed(1)}%`} |`,
    ),
    '',
    '## Blocks',
    '',
    '| block | channels | stride | groups | params before → after | max abs | max rel | cosine | result | kernel outlier ratio |',
    '|---|---|---:|---:|---|---:|---:|---:|---|---:|',
    ...r.blocks.map((b) => {
      const p = b.parity;
      return `| ${b.name} | ${b.inChannels}→${b.outChannels} | ${b.stride ?? '?'}${b.strideInferred ? ' (inferred)' : ''} | ${b.groups} | ${count(b.paramsBefore)} → ${count(b.paramsAfter)} | ${num(p?.maxAbs)} | ${num(p?.maxRel)} | ${p ? p.cosine.toFixed(6) : '–'} | ${p ? (p.pass ? 'PASS' : '**FAIL**') : '–'} | ${b.kernelStats ? b.kernelStats.outlierRatio.toFixed(1) : '–'} |`;
    }),
    '',
  ];
  return lines.join('\n');
}
