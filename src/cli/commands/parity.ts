import { basename } from 'node:path';
import { checkParity, compareModels, type BlockResult, type OutputResult, type ParityOptions, type ParityResult } from '../../core/parity/parity';
import { weightsText } from '../../shared/format';
import { numberFlag, oneFile, parseArgs, qarepvggFrom, UsageError, type ParsedArgs } from '../args';

export const parityHelp = `parity FILE [--deploy OTHER] [--inputs N] [--shape 1,3,224,224] [--seed S]
                       [--atol A] [--rtol R] [--input X.npy] [--eps E] [--weights KEY] [--qarepvgg v1|v2] [--latency-runs K] [--timeout SEC] [--json]
                       Run the train form and the deploy form on the same inputs (ONNX Runtime)
                       and compare every output and every block; exit code 1 when they differ.
                       A checkpoint holds no graph: RepLens runs its blocks (in a chain, or each on
                       its own input) and a classifier's head; --shape is the input of that part.
                       --latency-runs K also times each form K times (ONNX Runtime's default
                       optimizations); without it latency is not measured`;

export const PARITY_VALUED = ['--inputs', '--shape', '--seed', '--atol', '--rtol', '--input', '--latency-runs', '--timeout'] as const;

/** The parity options shared by `parity` and `convert --parity`. */
export function parityOptionsFrom(args: ParsedArgs): ParityOptions {
  const shapeText = args.flags.get('--shape');
  let shape: number[] | undefined;
  if (typeof shapeText === 'string') {
    shape = shapeText.split(/[,x×]/).map(Number);
    if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1))
      throw new UsageError('--shape must be four positive integers, e.g. 1,3,224,224');
  }
  const int = (n: number, min: number) => Number.isInteger(n) && n >= min;
  const nonNegative = (n: number) => Number.isFinite(n) && n >= 0;
  return {
    inputs: numberFlag(args, '--inputs', (n) => int(n, 1), 'a positive integer'),
    shape,
    seed: numberFlag(args, '--seed', (n) => int(n, 0) && n < 2 ** 32, 'an integer in [0, 4294967295]'),
    atol: numberFlag(args, '--atol', nonNegative, 'a non-negative number'),
    rtol: numberFlag(args, '--rtol', nonNegative, 'a non-negative number'),
    inputFile: args.flags.get('--input') as string | undefined,
    latencyRuns: numberFlag(args, '--latency-runs', (n) => int(n, 0), 'a non-negative integer'),
    timeoutSeconds: numberFlag(args, '--timeout', (n) => Number.isFinite(n) && n > 0, 'a positive number of seconds'),
  };
}

const sci = (v: number) => (Number.isNaN(v) ? 'NaN' : v === 0 ? '0' : v.toExponential(2));
const cos = (v: number) => (Number.isNaN(v) ? 'NaN' : v.toFixed(7));
const count = (v: number | null) => (v === null ? '?' : v.toLocaleString('en-US'));

function verdict(r: OutputResult | BlockResult): string {
  if (r.pass) return 'PASS';
  const bad = r.nonFinite.reference + r.nonFinite.candidate;
  if (bad > 0) return `FAIL (NaN/Inf: ${r.nonFinite.reference} in reference, ${r.nonFinite.candidate} in candidate)`;
  return r.error ? `FAIL (${r.error})` : 'FAIL';
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) =>
    r
      .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd(),
  );
}

/** The readable report of a parity result; `title` names what was compared. */
export function parityText(result: ParityResult, title: string): string[] {
  const { train, deploy } = result.forms;
  const inputs = result.seed === null ? 'the given input' : `${result.inputs} random input(s), seed ${result.seed}`;
  const lines = [
    `${result.pass ? 'PASS' : 'FAIL'}  ${title}: ${inputs}, atol ${Number(result.atol.toPrecision(3))}, rtol ${Number(result.rtol.toPrecision(3))}, topology ${result.topology}`,
    ...(result.advice ? [`  what next  ${result.advice}`] : []),
    `  tolerance  ${result.toleranceBasis}`,
    `  scope      ${result.scope}`,
    `  reference  ${train.file} (${train.source})`,
    `  candidate  ${deploy.file} (${deploy.source})`,
    ...(result.weights ? [`  ${weightsText(result.weights)}`] : []),
    `  inputs     ${Object.entries(result.shapes)
      .slice(0, 3)
      .map(([n, d]) => `${n} [${d.join(', ')}]`)
      .join('; ')}${Object.keys(result.shapes).length > 3 ? '; …' : ''}`,
    // Where the checked part does not start at the model's own input, say what --shape describes.
    ...(result.topology === 'chain' || result.topology === 'blockwise' ? [`             ${result.shapeUse}`] : []),
    '',
  ];
  // A chain's last block and a blockwise graph's blocks are outputs too; the block table shows them.
  const outputs = result.outputs.filter((o) => !result.blocks.some((b) => b.name === o.name));
  if (outputs.length > 0) {
    lines.push(
      ...table([
        ['output', 'max abs', 'max rel', 'mean abs', 'cosine', 'top-1', 'result'],
        ...outputs.map((o) => [
          o.candidateName ? `${o.name} ↔ ${o.candidateName}` : o.name,
          sci(o.maxAbs),
          sci(o.maxRel),
          sci(o.meanAbs),
          cos(o.cosine),
          o.top1Agreement === null ? '–' : `${(o.top1Agreement * 100).toFixed(1)}%`,
          verdict(o),
        ]),
      ]),
      '',
    );
  }
  if (result.blocks.length > 0) {
    lines.push(
      ...table([
        ['block', 'max abs', 'max rel', 'cosine', 'result'],
        ...result.blocks.map((b) => [b.name, sci(b.maxAbs), sci(b.maxRel), cos(b.cosine), verdict(b)]),
      ]),
    );
    const first = result.blocks.findIndex((b) => !b.pass);
    if (first >= 0 && result.topology !== 'blockwise')
      lines.push(`first failing block: ${result.blocks[first].name}${first > 0 ? ' (the blocks before it pass)' : ''}`);
    lines.push('');
  }
  const ms = (v: number | null) => (v === null ? '–' : `${v.toFixed(2)} ms`);
  lines.push(
    ...table([
      ['form', 'latency', 'params', 'MACs', 'nodes'],
      ['train', ms(train.latencyMs), count(train.params), count(train.macs), String(train.nodes)],
      ['deploy', ms(deploy.latencyMs), count(deploy.params), count(deploy.macs), String(deploy.nodes)],
    ]),
  );
  if (train.latencyMs !== null && deploy.latencyMs !== null && deploy.latencyMs > 0) {
    lines.push(`deploy runs ${(train.latencyMs / deploy.latencyMs).toFixed(2)}× as fast as train (median, ONNX Runtime CPU, default optimizations)`);
  } else if (train.latencyMs === null && deploy.latencyMs === null) {
    lines.push('latency not timed: --latency-runs K times each form K times');
  }
  if (result.notes.length > 0) lines.push('', 'notes:', ...result.notes.map((n) => `  ${n}`));
  return lines;
}

/** Progress on stderr, one line rewritten in place, only on a terminal. */
export function progressLine(enabled: boolean): ParityOptions['onProgress'] {
  if (!enabled) return undefined;
  return (p) => process.stderr.write(`\r${p.message} [${p.done}/${p.total}]\x1b[K`);
}

export async function parityCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { valued: ['--deploy', '--eps', '--weights', '--qarepvgg', ...PARITY_VALUED], flags: ['--json'] });
  const file = oneFile(args, 'parity');
  const options = parityOptionsFrom(args);
  const eps = numberFlag(args, '--eps', (n) => Number.isFinite(n) && n >= 0, 'a non-negative number');
  const json = args.flags.has('--json');
  const interactive = !json && process.stderr.isTTY;
  const controller = new AbortController();
  const cancel = () => controller.abort();
  process.once('SIGINT', cancel);
  try {
    const deploy = args.flags.get('--deploy') as string | undefined;
    const common = {
      ...options,
      eps,
      weights: args.flags.get('--weights') as string | undefined,
      qarepvgg: qarepvggFrom(args),
      signal: controller.signal,
      onProgress: progressLine(interactive),
    };
    const result = deploy === undefined ? await checkParity(file, common) : await compareModels(file, deploy, common);
    if (interactive) process.stderr.write('\r\x1b[K');
    if (json) out(JSON.stringify(result, null, 2));
    else out(parityText(result, deploy === undefined ? `${basename(file)}, train vs deploy` : `${basename(file)} vs ${basename(deploy)}`).join('\n'));
    return result.pass ? 0 : 1;
  } finally {
    process.off('SIGINT', cancel);
  }
}
