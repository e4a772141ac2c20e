import * as path from 'node:path';
import * as vscode from 'vscode';
import { reportMarkdown } from '../core/report/markdown';
import type { ReportData } from '../core/report/reportData';
import { writeAtomically } from '../core/writers/atomicFile';
import { parseWebviewMessage, type HostMessage } from '../shared/protocol';
import { log } from './log';
import { webviewHtml, webviewOptions } from './webviewHtml';

export const REPORT_VIEW = 'replens.report';

/** What a report panel needs from the rest of the extension. */
export interface ReportHost {
  extensionUri: vscode.Uri;
  /** A block was selected in the report: show it in the structure tree. */
  onSelectBlock(block: string): void;
}

/**
 * One report per model file. The report itself lives in the webview's state, so a panel
 * restored after a reload shows it again without recomputing anything.
 */
export class ReportPanels {
  private readonly panels = new Map<string, { panel: vscode.WebviewPanel; report?: ReportData }>();

  constructor(private readonly host: ReportHost) {}

  /** Opens (or reveals) the report panel for `input`, showing progress until `report` resolves. */
  async show(input: string, report: Promise<ReportData>): Promise<void> {
    const entry = this.open(input);
    entry.panel.reveal(undefined, true);
    this.post(entry.panel, { type: 'reportProgress', message: `Checking ${path.basename(input)}…` });
    try {
      entry.report = await report;
      this.post(entry.panel, { type: 'report', report: entry.report });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log().error(`Report for ${input} failed: ${message}`);
      this.post(entry.panel, { type: 'error', message });
    }
  }

  /** Highlights a block in every open report that has it. */
  revealBlock(block: string): void {
    for (const { panel, report } of this.panels.values()) {
      if (report?.blocks.some((b) => b.name === block)) this.post(panel, { type: 'revealBlock', block });
    }
  }

  /** Re-attaches a panel VS Code restored after a reload. */
  restore(panel: vscode.WebviewPanel, input: string): void {
    this.attach(panel, input);
  }

  private open(input: string) {
    const existing = this.panels.get(input);
    if (existing) return existing;
    const panel = vscode.window.createWebviewPanel(REPORT_VIEW, `Report: ${path.basename(input)}`, vscode.ViewColumn.Beside, {
      ...webviewOptions(this.host.extensionUri),
      retainContextWhenHidden: false,
    });
    return this.attach(panel, input);
  }

  private attach(panel: vscode.WebviewPanel, input: string) {
    panel.webview.options = webviewOptions(this.host.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.host.extensionUri, 'report', `Report: ${path.basename(input)}`);
    panel.iconPath = vscode.Uri.joinPath(this.host.extensionUri, 'media', 'replens.svg');
    const entry: { panel: vscode.WebviewPanel; report?: ReportData } = { panel };
    this.panels.set(input, entry);
    const sub = panel.webview.onDidReceiveMessage(async (raw: unknown) => {
      const message = parseWebviewMessage(raw);
      if (!message) {
        log().warn(`Ignored an unknown message from the report webview: ${JSON.stringify(raw)?.slice(0, 200)}`);
        return;
      }
      if (message.type === 'selectBlock') this.host.onSelectBlock(message.block);
      if (message.type === 'exportReport' && entry.report) await exportReport(entry.report, message.format, input);
    });
    panel.onDidDispose(() => {
      sub.dispose();
      if (this.panels.get(input)?.panel === panel) this.panels.delete(input);
    });
    return entry;
  }

  private post(panel: vscode.WebviewPanel, message: HostMessage): void {
    void panel.webview.postMessage(message);
  }
}

async function exportReport(report: ReportData, format: 'json' | 'markdown', input: string): Promise<void> {
  const ext = format === 'json' ? 'json' : 'md';
  const target = await vscode.window.showSaveDialog({
    defaultUri: vscode.Uri.file(input.replace(/(\.pth\.tar|\.[^./]+)$/, `.replens-report.${ext}`)),
    filters: format === 'json' ? { JSON: ['json'] } : { Markdown: ['md'] },
  });
  if (!target) return;
  const text = format === 'json' ? JSON.stringify(report, null, 2) : reportMarkdown(report);
  try {
    await writeAtomically(target.fsPath, (sink) => sink.write(new TextEncoder().encode(text)), { overwrite: true, protect: [input] });
    log().info(`Exported the report to ${target.fsPath}`);
  } catch (e) {
    void vscode.window.showErrorMessage(`RepLens: ${e instanceof Error ? e.message : String(e)}`);
  }
}
