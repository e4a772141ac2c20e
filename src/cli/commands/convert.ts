import { convertFile, type OutputFormat } from '../../core/convert/convert';
import type { DType } from '../../core/formats/tensor';
import { formatBytes } from '../../core/text';
import { oneFile, parseArgs, UsageError } from '../args';

export const convertHelp = `convert IN [-o OUT] [--format pth|safetensors] [--dtype float32|float16|bfloat16|float64]
                       [--eps E] [--keep-prefix] [--force] [--json]
                       Fuse every train-form block into one conv and write the deploy form`;

const FORMATS: readonly OutputFormat[] = ['pth', 'safetensors'];
const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16', 'float64'];

export async function convertCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, {
    valued: ['--output', '--format', '--dtype', '--eps'],
    flags: ['--force', '--json', '--keep-prefix'],
    aliases: { '-o': '--output', '-f': '--force' },
  });
  const input = oneFile(args, 'convert');
  const format = args.flags.get('--format') as OutputFormat | undefined;
  if (format !== undefined && !FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
  const dtype = args.flags.get('--dtype') as DType | undefined;
  if (dtype !== undefined && !DTYPES.includes(dtype)) throw new UsageError(`--dtype must be one of ${DTYPES.join(', ')}`);
  const epsText = args.flags.get('--eps') as string | undefined;
  const eps = epsText === undefined ? undefined : Number(epsText);
  if (eps !== undefined && !(eps >= 0 && Number.isFinite(eps))) throw new UsageError('--eps must be a non-negative number');
  const json = args.flags.has('--json');

  const controller = new AbortController();
  const cancel = () => controller.abort();
  process.once('SIGINT', cancel);
  try {
    const result = await convertFile(input, {
      output: args.flags.get('--output') as string | undefined,
      format,
      dtype,
      eps,
      force: args.flags.has('--force'),
      keepPrefix: args.flags.has('--keep-prefix'),
      signal: controller.signal,
      onProgress: json || !process.stderr.isTTY ? undefined : (done, total, block) => process.stderr.write(`\r[${done}/${total}] ${block.name}\x1b[K`),
    });
    if (!json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    if (json) {
      const { input: i, output, blocksFused, paramsBefore, paramsAfter, seconds } = result;
      out(JSON.stringify({ input: i, output, blocksFused, paramsBefore, paramsAfter, seconds, format: result.format, blocksAlreadyDeploy: result.blocksAlreadyDeploy, bytesWritten: result.bytesWritten, eps: result.eps, droppedPrefix: result.droppedPrefix ?? null, warnings: result.warnings }, null, 2));
    } else {
      out(`${result.output}: fused ${result.blocksFused} block(s)${result.blocksAlreadyDeploy ? `, ${result.blocksAlreadyDeploy} already deploy` : ''}; parameters ${result.paramsBefore.toLocaleString('en-US')} → ${result.paramsAfter.toLocaleString('en-US')}; ${formatBytes(result.bytesWritten)} in ${result.seconds.toFixed(2)} s`);
      for (const e of result.eps) out(`  BN eps ${e.value} (${e.source}) in ${e.blocks} block(s)`);
      if (result.droppedPrefix) out(`  dropped the '${result.droppedPrefix}' prefix (--keep-prefix keeps it)`);
      for (const w of result.warnings) out(`warning: ${w}`);
    }
    return 0;
  } finally {
    process.off('SIGINT', cancel);
  }
}
