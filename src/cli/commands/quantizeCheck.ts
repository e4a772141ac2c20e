import { basename } from 'node:path';
import type { ImageNormalization } from '../../core/quant/calibrationImages';
import { quantCheck, type Calibration, type QuantCheckResult } from '../../core/quant/quantCheck';
import { weightsText } from '../../shared/format';
import { numberFlag, oneFile, parseArgs, qarepvggFrom, UsageError } from '../args';

export const quantizeCheckHelp = `quantize-check FILE [--calib DIR|FILE] [--normalize imagenet|unit] [--calibration minmax|percentile] [--inputs N]
                       [--shape 1,3,224,224] [--seed S] [--max-error E] [--eps E] [--weights KEY] [--qarepvgg v1|v2] [--timeout SEC] [--json]
                       Quantize the deploy form to INT8 (weights int8 per tensor and per channel,
                       activations uint8 calibrated on the inputs: random, or --calib's .npy arrays and
                       PNG/JPEG images, scaled and center-cropped to --shape, ImageNet-normalized unless
                       --normalize unit) and run it beside the float deploy
                       form: the error at every output and, block by block, under INT8, weights only
                       and activations only, with the cause. --max-error E: exit code 1 when an
                       output's error (‖int8 − float‖ / ‖float‖, per-tensor weights) is above E`;

const CALIBRATIONS: readonly Calibration[] = ['minmax', 'percentile'];
const NORMALIZATIONS: readonly ImageNormalization[] = ['imagenet', 'unit'];

const percent = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)} %` : String(x));

/** The readable report: the outputs, then the blocks worst first, each with its cause and advice. */
export function quantText(result: QuantCheckResult): string[] {
  const source =
    result.calibration.source === 'files'
      ? `${result.calibration.files.length} calibration file(s)`
      : `${result.inputs} random input(s) of [${result.shape.join(', ')}]`;
  const lines = [`INT8  ${basename(result.file)}: ${source}, activations ${result.calibration.method}, topology ${result.topology}`];
  if (result.weights) lines.push(`  ${weightsText(result.weights)}`);
  lines.push('', 'outputs (error = ‖int8 − float‖ / ‖float‖)');
  for (const o of result.outputs) {
    const top1 = o.top1Agreement === null ? '' : `, top-1 agreement ${percent(o.top1Agreement)}`;
    lines.push(`  ${o.name}  weights ${o.weights.padEnd(11)}  error ${percent(o.relError)}, cosine ${o.cosine.toFixed(5)}${top1}`);
  }
  lines.push('', 'blocks, worst first: INT8 (weights, activations) per tensor; INT8 with per-channel weights');
  const width = Math.max(...result.blocks.map((b) => b.name.length));
  for (const b of result.blocks) {
    lines.push(
      `  ${b.name.padEnd(width)}  ${percent(b.int8Error).padStart(8)} (${percent(b.weightError)}, ${percent(b.activationError)}); per channel ${percent(b.perChannel.int8Error)}  ${b.cause === 'none' ? '' : `${b.cause}: `}${b.advice}`,
    );
  }
  return lines;
}

export async function quantizeCheckCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, {
    valued: ['--calib', '--normalize', '--calibration', '--inputs', '--shape', '--seed', '--max-error', '--eps', '--weights', '--qarepvgg', '--timeout'],
    flags: ['--json'],
  });
  const file = oneFile(args, 'quantize-check');
  const calibration = args.flags.get('--calibration') as Calibration | undefined;
  if (calibration !== undefined && !CALIBRATIONS.includes(calibration)) throw new UsageError(`--calibration must be one of ${CALIBRATIONS.join(', ')}`);
  const normalize = args.flags.get('--normalize') as ImageNormalization | undefined;
  if (normalize !== undefined && !NORMALIZATIONS.includes(normalize)) throw new UsageError(`--normalize must be one of ${NORMALIZATIONS.join(', ')}`);
  const shapeText = args.flags.get('--shape');
  const shape = typeof shapeText === 'string' ? shapeText.split(/[,x×]/).map(Number) : undefined;
  if (shape && (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1)))
    throw new UsageError('--shape must be four positive integers, e.g. 1,3,224,224');
  const int = (min: number) => (n: number) => Number.isInteger(n) && n >= min;
  const maxError = numberFlag(args, '--max-error', (n) => Number.isFinite(n) && n >= 0, 'a non-negative number');
  const controller = new AbortController();
  const cancel = () => controller.abort();
  process.once('SIGINT', cancel);
  try {
    const result = await quantCheck(file, {
      calib: args.flags.get('--calib') as string | undefined,
      calibration,
      imageNormalization: normalize,
      inputs: numberFlag(args, '--inputs', int(1), 'a positive integer'),
      shape,
      seed: numberFlag(args, '--seed', (n) => int(0)(n) && n < 2 ** 32, 'an integer in [0, 4294967295]'),
      eps: numberFlag(args, '--eps', (n) => Number.isFinite(n) && n >= 0, 'a non-negative number'),
      weights: args.flags.get('--weights') as string | undefined,
      qarepvgg: qarepvggFrom(args),
      timeoutSeconds: numberFlag(args, '--timeout', (n) => Number.isFinite(n) && n > 0, 'a positive number of seconds'),
      signal: controller.signal,
    });
    if (args.flags.has('--json')) out(JSON.stringify(result, null, 2));
    else out(quantText(result).join('\n'));
    const over = maxError !== undefined && result.outputs.some((o) => o.weights === 'per-tensor' && !(o.relError <= maxError));
    return over ? 1 : 0;
  } finally {
    process.off('SIGINT', cancel);
  }
}
