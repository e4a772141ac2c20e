import * as vscode from 'vscode';
import { quantCheck } from '../../core/quant/quantCheck';
import type { Int8Report } from '../../shared/int8Data';
import { log } from '../log';
import { int8Settings, paritySettings } from '../settings';
import { chosenWeights } from '../weightsChoice';

/** The INT8 tab's measurement of `input`: on the calibration inputs the settings name, else on as many seeded inputs as a parity check uses. */
export async function measureInt8(extensionUri: vscode.Uri, input: string): Promise<Int8Report> {
  const started = Date.now();
  const {
    file: _file,
    topology: _topology,
    weights: _weights,
    notes: _notes,
    ...report
  } = await quantCheck(input, {
    inputs: paritySettings().inputs,
    ...int8Settings(input),
    weights: chosenWeights(input),
    workerPath: vscode.Uri.joinPath(extensionUri, 'dist', 'parityWorker.js').fsPath,
  });
  const worst = report.blocks[0];
  log().info(
    `INT8 check of ${input} in ${Date.now() - started} ms${worst ? `; worst block ${worst.name} (${(100 * worst.int8Error).toFixed(2)} %, ${worst.cause})` : ''}`,
  );
  return report;
}
