import * as path from 'node:path';
import * as vscode from 'vscode';
import { messageOf, userMessage } from '../core/formats/errors';
import { splitModelName } from '../core/formats/modelFileNames';
import { reportMarkdown } from '../core/report/markdown';
import { filesUnchanged } from '../core/formats/fileStamp';
import type { ReportData } from '../shared/reportData';
import type { ReportStore } from '../core/report/reportStore';
import { writeBytesAtomically } from '../core/writers/atomicFile';
import type { Int8Report } from '../shared/int8Data';
import { packReport, parseWebviewMessage, type HostMessage, type Int8State, type ReportRef } from '../shared/protocol';
import { log } from './log';
import { retryStuckPage, watchPageStart, type PageStart } from './pageStart';
import { webviewHtml, webviewOptions } from './webviewHtml';

export const REPORT_VIEW = 'replens.report';

/** What a report panel needs from the rest of the extension. */
export interface ReportHost {
  extensionUri: vscode.Uri;
  /** Where reports are kept for panels restored after a reload. */
  store: ReportStore;
  /** A block was selected in the report: show it in the structure tree. */
  onSelectBlock(block: string): void;
  /** Runs the check behind a report again: `input` against `deploy`, or against its deploy form fused in memory. */
  rerun(input: string, deploy: string | undefined): void;
  /** What INT8 costs the deploy form of `input` (the report's INT8 tab). */
  measureInt8(input: string): Promise<Int8Report>;
}

interface ReportTab {
  panel: vscode.WebviewPanel;
  /** The deploy file the report compares with, once known. */
  output?: string | null;
  report?: ReportData;
  /** The id the report is stored under. */
  storedAs?: string | null;
  /** What the panel shows (progress, the report, or why there is none), sent to each new page. */
  view?: HostMessage;
  /** Whether the panel's page has started; one that does not is replaced. */
  page: PageStart;
  /** Panels opened in place of one whose page did not start. */
  restarts: number;
  /** The INT8 tab's measurement of this report's model, once asked for. */
  int8?: Int8State;
}

/**
 * One report per model file. Each report is stored on disk (the webview keeps only its id), so
 * a panel restored after a reload shows it again without recomputing anything. A hidden panel
 * loses its page (retainContextWhenHidden is off) and the page keeps no report, so every new
 * page gets the panel's view again when it says 'ready'.
 */
export class ReportPanels {
  private readonly panels = new Map<string, ReportTab>();

  constructor(private readonly host: ReportHost) {}

  /** Opens (or reveals) the report panel for `input`, showing progress until `report` resolves. */
  async show(input: string, report: Promise<ReportData>): Promise<void> {
    const entry = this.open(input);
    entry.panel.reveal(undefined, true);
    this.setView(entry, { type: 'reportProgress', message: `Checking ${path.basename(input)}…` });
    try {
      const data = await report;
      // The report this one replaces need not be kept for this panel any more.
      entry.storedAs = null;
      this.showIn(entry, data, await this.store(data));
    } catch (e) {
      log().error(`Report for ${input} failed: ${messageOf(e)}`);
      this.setView(entry, { type: 'error', message: userMessage(e) });
    }
  }

  /**
   * Shows the report about `file` (as its input or its deploy file) without making it again: the
   * panel showing it, or the newest stored report whose files are unchanged. False when there is none.
   */
  async showExisting(file: string): Promise<boolean> {
    for (const [input, entry] of this.panels) {
      if (input !== file && entry.output !== file) continue;
      // Still being made, or made from the files as they are: that is the report.
      if (!entry.report || (await filesUnchanged(entry.report))) {
        entry.panel.reveal();
        return true;
      }
    }
    const about = await this.host.store.latestCurrent(file);
    if (!about) return false;
    let report: ReportData;
    try {
      report = await this.host.store.load(about.id);
    } catch (e) {
      log().warn(`The stored report ${about.id} for ${file} could not be read, so it is made again: ${messageOf(e)}`);
      return false;
    }
    const entry = this.open(about.input);
    entry.panel.reveal();
    this.showIn(entry, report, about.id);
    log().info(`Opened the stored report for ${file} (${this.host.store.fileOf(about.id)})`);
    return true;
  }

  /** Highlights a block in every open report that has it. */
  revealBlock(block: string): void {
    for (const entry of this.panels.values()) {
      if (entry.page.ready && entry.report?.blocks.some((b) => b.name === block))
        void entry.panel.webview.postMessage({ type: 'revealBlock', block } satisfies HostMessage);
    }
  }

  /** Re-attaches a panel VS Code restored after a reload and shows its stored report, or says why it cannot. */
  async restore(panel: vscode.WebviewPanel, ref: ReportRef): Promise<void> {
    const entry = this.attach(panel, ref.input);
    entry.output = ref.output;
    try {
      if (ref.id === null) throw new Error('it was not stored when it was made');
      this.showIn(entry, await this.host.store.load(ref.id), ref.id);
      log().info(`Restored the report for ${ref.input} from ${this.host.store.fileOf(ref.id)}`);
    } catch (e) {
      const message = messageOf(e);
      log().warn(`Report for ${ref.input} not restored: ${message}`);
      this.setView(entry, { type: 'reportUnavailable', message });
    }
  }

  /** Shows `report`, stored under `storedAs`, in the panel of `entry`. */
  private showIn(entry: ReportTab, report: ReportData, storedAs: string | null): void {
    // A new report may be about other weights: what was measured of the old one no longer applies.
    entry.int8 = undefined;
    entry.report = report;
    entry.output = report.output;
    entry.storedAs = storedAs;
    this.setView(entry, { type: 'report', report: packReport(report), storedAs });
  }

  /** Stores a report for restoring; a failure costs only that, so it is logged, not shown. */
  private async store(report: ReportData): Promise<string | null> {
    const shown = [...this.panels.values()].flatMap((e) => (e.storedAs ? [e.storedAs] : []));
    try {
      return await this.host.store.save(report, shown);
    } catch (e) {
      log().warn(`The report for ${report.input} was not stored, so it will not survive a reload: ${messageOf(e)}`);
      return null;
    }
  }

  private open(input: string) {
    const existing = this.panels.get(input);
    if (existing) return existing;
    // One tab per model, reused; a new one joins the other reports' group, as previews do, rather than
    // opening yet another column beside the active editor (itself often a report).
    const column = [...this.panels.values()].map((e) => e.panel.viewColumn).find((c) => c !== undefined) ?? vscode.ViewColumn.Beside;
    return this.attach(newReportPanel(input, column), input);
  }

  private attach(panel: vscode.WebviewPanel, input: string): ReportTab {
    // connect() gives it its panel and page.
    const entry = { restarts: 0 } as ReportTab;
    this.panels.set(input, entry);
    this.connect(entry, panel, input);
    return entry;
  }

  /** Makes `panel` the one that shows `entry`, with a new page. */
  private connect(entry: ReportTab, panel: vscode.WebviewPanel, input: string): void {
    const page = watchPageStart(panel, () => this.pageDidNotStart(entry, input));
    entry.panel = panel;
    entry.page = page;
    panel.webview.options = webviewOptions;
    panel.webview.html = webviewHtml(this.host.extensionUri, 'report', panel.title);
    panel.iconPath = vscode.Uri.joinPath(this.host.extensionUri, 'media', 'replens.svg');
    const sub = panel.webview.onDidReceiveMessage(async (raw: unknown) => {
      const message = parseWebviewMessage(raw);
      if (!message) {
        log().warn(`Ignored an unknown message from the report webview: ${JSON.stringify(raw)?.slice(0, 200)}`);
        return;
      }
      if (message.type === 'ready') {
        page.started();
        entry.restarts = 0;
        if (entry.view) void panel.webview.postMessage(entry.view);
        if (entry.int8) void panel.webview.postMessage({ type: 'int8', state: entry.int8 } satisfies HostMessage);
      }
      if (message.type === 'selectBlock') this.host.onSelectBlock(message.block);
      if (message.type === 'exportReport' && entry.report) await exportReport(entry.report, message.format, input);
      if (message.type === 'rerunReport') this.host.rerun(input, entry.output ?? undefined);
      if (message.type === 'measureInt8' && entry.int8?.status !== 'running') await this.measureInt8(entry, input);
    });
    panel.onDidDispose(() => {
      sub.dispose();
      page.dispose();
      if (this.panels.get(input)?.panel === panel) this.panels.delete(input);
    });
  }

  /** A shown panel whose page never started is replaced by a new one in its place, showing the same view. */
  private pageDidNotStart(entry: ReportTab, input: string): void {
    if (!retryStuckPage(entry.restarts++, 'report', input, 'close its tab and use Open Report')) return;
    const stuck = entry.panel;
    this.connect(entry, newReportPanel(input, stuck.viewColumn ?? vscode.ViewColumn.Active), input);
    stuck.dispose();
  }

  /** Measures INT8 for the report's model and shows each step in the INT8 tab; a failure is shown there, never thrown. */
  private async measureInt8(entry: ReportTab, input: string): Promise<void> {
    const show = (state: Int8State) => {
      entry.int8 = state;
      if (entry.page.ready) void entry.panel.webview.postMessage({ type: 'int8', state } satisfies HostMessage);
    };
    show({ status: 'running', message: `Quantizing ${path.basename(input)} and running it beside its float deploy form…` });
    try {
      show({ status: 'done', report: await this.host.measureInt8(input) });
    } catch (e) {
      log().error(`INT8 check of ${input} failed: ${messageOf(e)}`);
      show({ status: 'error', message: userMessage(e) });
    }
  }

  /** Shows `view` in the panel now if its page is ready, else when it says so. */
  private setView(entry: ReportTab, view: HostMessage): void {
    entry.view = view;
    if (entry.page.ready) void entry.panel.webview.postMessage(view);
  }
}

/** A new report tab for `input` in `column`. Focus stays where the user is, so the next model opened from the Explorer opens beside the others, not among the reports. */
function newReportPanel(input: string, column: vscode.ViewColumn): vscode.WebviewPanel {
  return vscode.window.createWebviewPanel(
    REPORT_VIEW,
    `Report: ${path.basename(input)}`,
    { viewColumn: column, preserveFocus: true },
    { ...webviewOptions, retainContextWhenHidden: false },
  );
}

async function exportReport(report: ReportData, format: 'json' | 'markdown', input: string): Promise<void> {
  const ext = format === 'json' ? 'json' : 'md';
  const target = await vscode.window.showSaveDialog({
    defaultUri: vscode.Uri.file(path.join(path.dirname(input), `${splitModelName(input).stem}.replens-report.${ext}`)),
    filters: format === 'json' ? { JSON: ['json'] } : { Markdown: ['md'] },
  });
  if (!target) return;
  const text = format === 'json' ? JSON.stringify(report, null, 2) : reportMarkdown(report);
  try {
    await writeBytesAtomically(target.fsPath, new TextEncoder().encode(text), { overwrite: true, protect: [input] });
    log().info(`Exported the report to ${target.fsPath}`);
  } catch (e) {
    void vscode.window.showErrorMessage(`RepLens: could not export the report: ${userMessage(e)}`);
  }
}
