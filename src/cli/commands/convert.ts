import { basename } from 'node:path';
import { convertFile, type ConvertOptions, type ConvertResult, type OutputFormat } from '../../core/convert/convert';
import type { LoadNote } from '../../shared/reportData';
import type { DType } from '../../core/formats/tensor';
import { compareModels, type ParityOptions } from '../../core/parity/parity';
import { formatBytes, weightsText } from '../../shared/format';
import { numberFlag, oneFile, parseArgs, qarepvggFrom, UsageError, type ParsedArgs } from '../args';
import { PARITY_VALUED, parityOptionsFrom, parityText, progressLine } from './parity';

export const convertHelp = `convert IN [-o OUT] [--format pth|safetensors|onnx] [--dtype float32|float16|bfloat16|float64]
                       [--weights KEY] [--qarepvgg v1|v2] [--eps E] [--keep-prefix] [--state-dict] [--force] [--json]
                       [--parity [parity options]]
                       Fuse every train-form block into one conv and write the deploy form; a pickled
                       model (torch.save(model), a YOLO checkpoint) stays one unless --state-dict;
                       --parity then runs the written file against IN (see parity)`;

const FORMATS: readonly OutputFormat[] = ['pth', 'safetensors', 'onnx'];
const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16', 'float64'];

const verifiedText = (seconds: number) => `read back and verified in ${seconds.toFixed(2)} s`;

/** The load note: what the file is, then the Python lines, indented so they can be copied as they are. */
export function loadNoteText(note: LoadNote): string[] {
  return [`load: ${note.what}.`, `  ${note.how}:`, ...note.code.map((line) => `    ${line}`)];
}

/** What was written, in the words of the output's kind: an ONNX graph built for a checkpoint counts its own parameters. */
function convertedText(result: ConvertResult): string[] {
  const already = result.blocksAlreadyDeploy ? `, ${result.blocksAlreadyDeploy} already deploy` : '';
  const params = (n: number) => n.toLocaleString('en-US');
  const what = result.built
    ? `ONNX graph (${result.built.topology}) with ${result.blocksFused} fused block(s)${already}; parameters ${params(result.paramsBefore)} in the file → ${params(result.paramsAfter)} in the graph`
    : `fused ${result.blocksFused} block(s)${already}; parameters ${params(result.paramsBefore)} → ${params(result.paramsAfter)}`;
  return [
    `${result.output}: ${what}; ${formatBytes(result.bytesWritten)} in ${result.seconds.toFixed(2)} s, ${verifiedText(result.verifySeconds)}`,
    ...(result.weights ? [`  ${weightsText(result.weights)}`] : []),
    ...result.eps.map((e) => `  BN eps ${e.value} (${e.source}) in ${e.blocks} block(s)`),
    ...(result.droppedPrefix ? [`  dropped the '${result.droppedPrefix}' prefix (--keep-prefix keeps it)`] : []),
    ...(result.built?.notes ?? []).map((n) => `  ${n}`),
    ...result.warnings.map((w) => `warning: ${w}`),
    ...loadNoteText(result.load),
  ];
}

/** The conversion's options from the command line, checked; the parity options when --parity asks for a check. */
function convertOptionsFrom(args: ParsedArgs): { options: ConvertOptions; parity?: ParityOptions } {
  const format = args.flags.get('--format') as OutputFormat | undefined;
  if (format !== undefined && !FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
  const dtype = args.flags.get('--dtype') as DType | undefined;
  if (dtype !== undefined && !DTYPES.includes(dtype)) throw new UsageError(`--dtype must be one of ${DTYPES.join(', ')}`);
  const parity = args.flags.has('--parity') ? parityOptionsFrom(args) : undefined;
  if (!parity && PARITY_VALUED.some((f) => args.flags.has(f))) throw new UsageError(`${PARITY_VALUED.find((f) => args.flags.has(f))} needs --parity`);
  const options: ConvertOptions = {
    output: args.flags.get('--output') as string | undefined,
    format,
    dtype,
    eps: numberFlag(args, '--eps', (n) => n >= 0 && Number.isFinite(n), 'a non-negative number'),
    weights: args.flags.get('--weights') as string | undefined,
    qarepvgg: qarepvggFrom(args),
    force: args.flags.has('--force'),
    keepPrefix: args.flags.has('--keep-prefix'),
    stateDict: args.flags.has('--state-dict'),
  };
  return { options, parity };
}

export async function convertCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, {
    valued: ['--output', '--format', '--dtype', '--eps', '--weights', '--qarepvgg', ...PARITY_VALUED],
    flags: ['--force', '--json', '--keep-prefix', '--state-dict', '--parity'],
    aliases: { '-o': '--output', '-f': '--force' },
  });
  const input = oneFile(args, 'convert');
  const { options, parity } = convertOptionsFrom(args);
  const json = args.flags.has('--json');
  const controller = new AbortController();
  const cancel = () => controller.abort();
  process.once('SIGINT', cancel);
  try {
    const interactive = !json && process.stderr.isTTY;
    const onProgress = interactive
      ? (done: number, total: number, block: { name: string }) => process.stderr.write(`\r[${done}/${total}] ${block.name}\x1b[K`)
      : undefined;
    const result = await convertFile(input, { ...options, signal: controller.signal, onProgress });
    if (interactive) process.stderr.write('\r\x1b[K');
    const summary = { ...result, droppedPrefix: result.droppedPrefix ?? null, module: result.module ?? null, weights: result.weights ?? null };
    if (!json) out(convertedText(result).join('\n'));
    if (!parity) {
      if (json) out(JSON.stringify(summary, null, 2));
      return 0;
    }
    // The written file against the input, as a user would load them: the same eps as the fusion.
    const { eps, weights, qarepvgg } = options;
    const check = await compareModels(input, result.output, {
      ...parity,
      eps,
      weights,
      qarepvgg,
      signal: controller.signal,
      onProgress: progressLine(interactive),
    });
    if (interactive) process.stderr.write('\r\x1b[K');
    if (json) out(JSON.stringify({ ...summary, parity: check }, null, 2));
    else out(['', ...parityText(check, `${basename(input)} vs ${basename(result.output)}`)].join('\n'));
    return check.pass ? 0 : 1;
  } finally {
    process.off('SIGINT', cancel);
  }
}
