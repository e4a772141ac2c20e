import * as vscode from 'vscode';
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
