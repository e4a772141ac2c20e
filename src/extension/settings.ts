import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ImageNormalization } from '../core/quant/calibrationImages';
import type { OutputFormat } from '../core/convert/convert';
import { DEFAULT_OUTPUT_NAME } from '../core/convert/convert';

/** RepLens settings, read fresh on each use so changes apply without a reload. */
export function convertSettings(): { outputName: string; outputFormat: OutputFormat | undefined; eps: number | undefined } {
  const config = vscode.workspace.getConfiguration('replens.convert');
  const format = config.get<string>('outputFormat', 'same');
  const eps = config.get<number | null>('bnEps', null);
  return {
    outputName: config.get<string>('outputName', DEFAULT_OUTPUT_NAME) || DEFAULT_OUTPUT_NAME,
    outputFormat: format === 'pth' || format === 'safetensors' || format === 'onnx' ? format : undefined,
    eps: typeof eps === 'number' && eps >= 0 ? eps : undefined,
  };
}

/**
 * Parity options from the settings (replens.parity.*). Unset tolerances stay undefined, so parity
 * picks them for the deploy file's dtype (core/parity/tolerance.ts).
 */
export function paritySettings(): { inputs: number; atol?: number; rtol?: number; latencyRuns: number } {
  const config = vscode.workspace.getConfiguration('replens.parity');
  const tolerance = (key: string) => config.get<number | null>(key) ?? undefined;
  return { inputs: config.get<number>('inputs', 4), atol: tolerance('atol'), rtol: tolerance('rtol'), latencyRuns: config.get<number>('latencyRuns', 10) };
}

export function parityAfterConvert(): boolean {
  return vscode.workspace.getConfiguration('replens.parity').get<boolean>('afterConvert', true);
}

/** The INT8 tab's calibration inputs (replens.int8.*): a folder or file of arrays and images, resolved against the model's folder, or none (random inputs). */
export function int8Settings(model: string): { calib?: string; imageNormalization: ImageNormalization } {
  const config = vscode.workspace.getConfiguration('replens.int8');
  const calibration = config.get<string>('calibration', '').trim();
  const normalize = config.get<string>('normalize', 'imagenet');
  return {
    ...(calibration ? { calib: path.resolve(path.dirname(model), calibration) } : {}),
    imageNormalization: normalize === 'unit' ? 'unit' : 'imagenet',
  };
}
