import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { convertFile, defaultOutputPath, sameFormatAs, type ConvertResult, type OutputFormat } from '../../core/convert/convert';
import { probeFile } from '../../core/formats/probe';
import type { ReportData } from '../../shared/reportData';
import { OutputError } from '../../core/writers/atomicFile';
import { log } from '../log';
import { convertCancelledText, convertFailedText } from '../messages';
import { weightsText } from '../../shared/format';
import { targetModelUri } from '../modelFiles';
import { chosenWeights } from '../weightsChoice';
import { convertSettings } from '../settings';
import { messageOf } from '../../core/formats/errors';

/**
 * Called with each finished conversion, e.g. to refresh views that show the output; returns the
 * report of the check it starts, if it starts one (undefined when the check was cancelled).
 */
export type ConvertListener = (result: ConvertResult) => Promise<ReportData | undefined> | void;

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

/** Inputs being converted now: a second Convert of one of them would only race the first for the same output. */
const converting = new Set<string>();

/** RepLens: Convert to Deploy — fuse every train-form block of a model file into a new file beside it. */
export async function convertToDeploy(arg: unknown, onConverted: ConvertListener): Promise<ConvertResult | undefined> {
  const uri = targetModelUri(arg);
  if (!uri) {
    void vscode.window.showInformationMessage('RepLens: open or select a model file to convert.');
    return undefined;
  }
  const input = uri.fsPath;
  if (converting.has(input)) {
    void vscode.window.showInformationMessage(`RepLens: ${path.basename(input)} is already being converted.`);
    return undefined;
  }
  converting.add(input);
  try {
    return await convert(input, onConverted);
  } finally {
    converting.delete(input);
  }
}

/** The toast for a written file: what was written and, when a check ran, its verdict; reason first when it did not pass. */
function announce(result: ConvertResult, checked: ReportData | undefined): void {
  const name = path.basename(result.output);
  const what = `${result.blocksFused} blocks fused, ${result.paramsBefore.toLocaleString('en-US')} → ${result.paramsAfter.toLocaleString('en-US')} parameters${result.weights ? `, from the '${result.weights.key}' weights` : ''}`;
  const buttons = ['Open', 'Reveal in Explorer'];
  const shown =
    checked?.pass === null
      ? vscode.window.showErrorMessage(
          `RepLens: the check of ${name} could not run: ${checked.parityError ?? 'no reason was given'}. The file was written (${what}); see the report.`,
          ...buttons,
        )
      : checked?.pass === false
        ? vscode.window.showWarningMessage(`RepLens: ${name} FAILED its parity check: ${checked.advice ?? 'see the report'} (written: ${what}).`, ...buttons)
        : vscode.window.showInformationMessage(`RepLens: wrote ${name} — ${what}${checked ? '; parity PASS' : ''}.`, ...buttons);
  void shown.then((choice) => {
    const out = vscode.Uri.file(result.output);
    if (choice === 'Open') void vscode.commands.executeCommand('vscode.open', out);
    if (choice === 'Reveal in Explorer') void vscode.commands.executeCommand('revealInExplorer', out);
  });
}

async function convert(input: string, onConverted: ConvertListener): Promise<ConvertResult | undefined> {
  const settings = convertSettings();
  let output: string;
  let format: OutputFormat;
  let force = false;
  try {
    const probe = await probeFile(input);
    // An ONNX model is fused inside its own graph, so it always stays ONNX.
    format = probe.kind === 'onnx' ? 'onnx' : (settings.outputFormat ?? sameFormatAs(probe.kind));
    output = defaultOutputPath(input, format, settings.outputName);
  } catch (e) {
    log().error(`Conversion of ${input} failed: ${messageOf(e)}`);
    void vscode.window.showErrorMessage(convertFailedText(input, e));
    return undefined;
  }
  if (await exists(output)) {
    const replace = await vscode.window.showWarningMessage(`${path.basename(output)} already exists. Replace it?`, { modal: true }, 'Replace');
    if (replace !== 'Replace') return undefined;
    force = true;
  }

  log().info(`Converting ${input} → ${output}`);
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `RepLens: converting ${path.basename(input)}`, cancellable: true },
      async (progress, token) => {
        const controller = new AbortController();
        token.onCancellationRequested(() => controller.abort());
        let last = 0;
        return convertFile(input, {
          output,
          format,
          eps: settings.eps,
          weights: chosenWeights(input),
          force,
          signal: controller.signal,
          onProgress: (done, total, block) => {
            progress.report({ message: `block ${done}/${total}: ${block.name}`, increment: ((done - last) / total) * 100 });
            last = done;
          },
        });
      },
    );
    if (result.weights) log().info(`  ${weightsText(result.weights)}`);
    log().info(
      `Wrote ${result.output}: ${result.blocksFused} blocks fused, ${result.paramsBefore} → ${result.paramsAfter} parameters, ${result.bytesWritten} bytes in ${result.seconds.toFixed(2)} s`,
    );
    for (const e of result.eps) log().info(`  BN eps ${e.value} (${e.source}) in ${e.blocks} block(s)`);
    for (const w of result.warnings) log().warn(`  ${w}`);
    // The conversion is announced once its check has spoken: a file whose check failed or could not run is not a success.
    void Promise.resolve(onConverted(result)).then(
      (checked) => announce(result, checked || undefined),
      () => announce(result, undefined),
    );
    return result;
  } catch (e) {
    const message = messageOf(e);
    log().error(`Conversion of ${input} failed: ${message}`);
    if (e instanceof OutputError && e.code === 'cancelled') void vscode.window.showInformationMessage(convertCancelledText(input));
    else void vscode.window.showErrorMessage(convertFailedText(input, e));
    return undefined;
  }
}
