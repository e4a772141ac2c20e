import { basename } from 'node:path';
import { convertFile, type OutputFormat } from '../../core/convert/convert';
import type { LoadNote } from '../../shared/reportData';
import { probeFile } from '../../core/formats/probe';
import type { DType } from '../../core/formats/tensor';
import { writeDeployOnnx } from '../../core/graph/writeOnnx';
import { compareModels } from '../../core/parity/parity';
import { formatBytes, weightsText } from '../../shared/format';
import { oneFile, parseArgs, qarepvggFrom, UsageError } from '../args';
import { PARITY_VALUED, parityOptionsFrom, parityText, progressLine } from './parity';

export const convertHelp = `convert IN [-o OUT] [--format pth|safetensors|onnx] [--dtype float32|float16|bfloat16|float64]
                       [--weights KEY] [--qarepvgg v1|v2] [--eps E] [--keep-prefix] [--state-dict] [--force] [--json]
                       [--parity [parity options]]
                       Fuse every train-form block into one conv and write the deploy form; a pickled
                       model (torch.save(model), a YOLO checkpoint) stays one unless --state-dict;
                       --parity then runs the written file against IN (see parity)`;

const FORMATS: readonly (OutputFormat | 'onnx')[] = ['pth', 'safetensors', 'onnx'];
const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16', 'float64'];

const verifiedText = (seconds: number) => `read back and verified in ${seconds.toFixed(2)} s`;

/** The load note: what the file is, then the Python lines, indented so they can be copied as they are. */
export function loadNoteText(note: LoadNote): string[] {
  return [`load: ${note.what}.`, `  ${note.how}:`, ...note.code.map((line) => `    ${line}`)];
}

export async function convertCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, {
    valued: ['--output', '--format', '--dtype', '--eps', '--weights', '--qarepvgg', ...PARITY_VALUED],
    flags: ['--force', '--json', '--keep-prefix', '--state-dict', '--parity'],
    aliases: { '-o': '--output', '-f': '--force' },
  });
  const input = oneFile(args, 'convert');
  const format = args.flags.get('--format') as OutputFormat | 'onnx' | undefined;
  if (format !== undefined && !FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
  const dtype = args.flags.get('--dtype') as DType | undefined;
  if (dtype !== undefined && !DTYPES.includes(dtype)) throw new UsageError(`--dtype must be one of ${DTYPES.join(', ')}`);
  const epsText = args.flags.get('--eps') as string | undefined;
  const eps = epsText === undefined ? undefined : Number(epsText);
  if (eps !== undefined && !(eps >= 0 && Number.isFinite(eps))) throw new UsageError('--eps must be a non-negative number');
  const json = args.flags.has('--json');
  const weights = args.flags.get('--weights') as string | undefined;
  const qarepvgg = qarepvggFrom(args);
  if (format === 'onnx' && (dtype !== undefined || args.flags.has('--keep-prefix') || args.flags.has('--state-dict'))) {
    throw new UsageError('--dtype, --keep-prefix and --state-dict do not apply to --format onnx');
  }
  const parity = args.flags.has('--parity') ? parityOptionsFrom(args) : undefined;
  if (!parity && PARITY_VALUED.some((f) => args.flags.has(f))) throw new UsageError(`${PARITY_VALUED.find((f) => args.flags.has(f))} needs --parity`);

  const controller = new AbortController();
  const cancel = () => controller.abort();
  process.once('SIGINT', cancel);
  try {
    const output = args.flags.get('--output') as string | undefined;
    const force = args.flags.has('--force');
    const interactive = !json && process.stderr.isTTY;
    const onProgress = interactive ? (done: number, total: number, block: { name: string }) => process.stderr.write(`\r[${done}/${total}] ${block.name}\x1b[K`) : undefined;
    let summary: Record<string, unknown>;
    let written: string;
    // A checkpoint has no graph: its ONNX form is built. An ONNX input goes to convertFile, which fuses inside its graph.
    if (format === 'onnx' && (await probeFile(input).catch(() => undefined))?.kind !== 'onnx') {
      const result = await writeDeployOnnx(input, { output, force, eps, weights, qarepvgg, signal: controller.signal, onProgress });
      if (interactive) process.stderr.write('\r\x1b[K');
      written = result.output;
      summary = { ...result, format: 'onnx' };
      if (!json) {
        out(`${result.output}: ONNX graph (${result.topology}) with ${result.blocksFused} fused block(s)${result.blocksAlreadyDeploy ? `, ${result.blocksAlreadyDeploy} already deploy` : ''}; parameters ${result.paramsBefore.toLocaleString('en-US')} in the file → ${result.paramsAfter.toLocaleString('en-US')} in the graph; ${formatBytes(result.bytesWritten)} in ${result.seconds.toFixed(2)} s, ${verifiedText(result.verifySeconds)}`);
        if (result.weights) out(`  ${weightsText(result.weights)}`);
        for (const n of result.notes) out(`  ${n}`);
        for (const w of result.warnings) out(`warning: ${w}`);
      }
    } else {
      const result = await convertFile(input, {
        output,
        format,
        dtype,
        eps,
        weights,
        qarepvgg,
        force,
        keepPrefix: args.flags.has('--keep-prefix'),
        stateDict: args.flags.has('--state-dict'),
        signal: controller.signal,
        onProgress,
      });
      if (interactive) process.stderr.write('\r\x1b[K');
      written = result.output;
      const { input: i, blocksFused, paramsBefore, paramsAfter, seconds, verifySeconds } = result;
      summary = { input: i, output: result.output, blocksFused, paramsBefore, paramsAfter, seconds, verifySeconds, format: result.format, blocksAlreadyDeploy: result.blocksAlreadyDeploy, bytesWritten: result.bytesWritten, eps: result.eps, droppedPrefix: result.droppedPrefix ?? null, module: result.module ?? null, weights: result.weights ?? null, load: result.load, warnings: result.warnings };
      if (!json) {
        out(`${result.output}: fused ${result.blocksFused} block(s)${result.blocksAlreadyDeploy ? `, ${result.blocksAlreadyDeploy} already deploy` : ''}; parameters ${result.paramsBefore.toLocaleString('en-US')} → ${result.paramsAfter.toLocaleString('en-US')}; ${formatBytes(result.bytesWritten)} in ${result.seconds.toFixed(2)} s, ${verifiedText(result.verifySeconds)}`);
        if (result.weights) out(`  ${weightsText(result.weights)}`);
        for (const e of result.eps) out(`  BN eps ${e.value} (${e.source}) in ${e.blocks} block(s)`);
        if (result.droppedPrefix) out(`  dropped the '${result.droppedPrefix}' prefix (--keep-prefix keeps it)`);
        for (const w of result.warnings) out(`warning: ${w}`);
        out(loadNoteText(result.load).join('\n'));
      }
    }
    if (!parity) {
      if (json) out(JSON.stringify(summary, null, 2));
      return 0;
    }
    // The written file against the input, as a user would load them: the same eps as the fusion.
    const check = await compareModels(input, written, { ...parity, eps, weights, qarepvgg, signal: controller.signal, onProgress: progressLine(interactive) });
    if (interactive) process.stderr.write('\r\x1b[K');
    if (json) out(JSON.stringify({ ...summary, parity: check }, null, 2));
    else out(['', ...parityText(check, `${basename(input)} vs ${basename(written)}`)].join('\n'));
    return check.pass ? 0 : 1;
  } finally {
    process.off('SIGINT', cancel);
  }
}
