import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LoadNote } from '../../shared/reportData';
import { buildReport, type ReportOptions } from '../../core/report/buildReport';
import type { ReportData } from '../../shared/reportData';
import { log } from '../log';
import { targetModelUri } from '../modelFiles';
import type { ReportPanels } from '../reportPanel';
import { paritySettings } from '../settings';
import { chosenWeights } from '../weightsChoice';

/**
 * Builds the report for `input` (compared with `deploy` when given) with a cancellable
 * progress notification, and shows it in its report panel. `load` is the load note of a
 * `deploy` RepLens just wrote, for the report to show.
 */
export async function showReport(
  reports: ReportPanels,
  extensionUri: vscode.Uri,
  input: string,
  deploy?: string,
  load?: LoadNote,
): Promise<ReportData | undefined> {
  const report = Promise.resolve(
    vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `RepLens: checking parity of ${path.basename(input)}`, cancellable: true },
      async (progress, token): Promise<ReportData> => {
        const controller = new AbortController();
        token.onCancellationRequested(() => controller.abort());
        const options: ReportOptions = {
          ...paritySettings(),
          weights: chosenWeights(input),
          deploy,
          load,
          signal: controller.signal,
          layoutWorker: vscode.Uri.joinPath(extensionUri, 'dist', 'layoutWorker.js').fsPath,
          workerPath: vscode.Uri.joinPath(extensionUri, 'dist', 'parityWorker.js').fsPath,
          onProgress: (p) => progress.report({ message: p.message }),
        };
        const started = Date.now();
        const data = await buildReport(input, options);
        const verdict = data.pass === null ? `not run (${data.parityError})` : data.pass ? 'PASS' : 'FAIL';
        log().info(`Parity of ${input}${deploy ? ` vs ${deploy}` : ''}: ${verdict} in ${Date.now() - started} ms`);
        // After a conversion the conversion's own message gives the verdict.
        if (data.pass === false && !deploy)
          void vscode.window.showWarningMessage(`RepLens: parity FAILED for ${path.basename(input)}: ${data.advice ?? 'see the report'}`);
        if (data.pass === null && !deploy)
          void vscode.window.showErrorMessage(
            `RepLens: the parity check of ${path.basename(input)} could not run: ${data.parityError ?? 'no reason was given'}`,
          );
        return data;
      },
    ),
  );
  await reports.show(input, report);
  return report.catch(() => undefined);
}

/** RepLens: Check Parity — the train form against its deploy form fused in memory. */
export async function checkParityCommand(arg: unknown, reports: ReportPanels, extensionUri: vscode.Uri): Promise<void> {
  const uri = targetModelUri(arg);
  if (!uri) {
    void vscode.window.showInformationMessage('RepLens: open or select a model file to check.');
    return;
  }
  await showReport(reports, extensionUri, uri.fsPath);
}

/** RepLens: Open Report — the report about a model file as it is now: shown again if there is one, made by a parity check if not. */
export async function openReportCommand(arg: unknown, reports: ReportPanels, extensionUri: vscode.Uri): Promise<void> {
  const uri = targetModelUri(arg);
  if (!uri) {
    void vscode.window.showInformationMessage('RepLens: open or select a model file to see its report.');
    return;
  }
  if (await reports.showExisting(uri.fsPath)) return;
  await showReport(reports, extensionUri, uri.fsPath);
}
