import * as path from 'node:path';
import * as vscode from 'vscode';
import { errorFile, messageOf } from '../core/formats/errors';
import { parseWebviewMessage, type HostMessage } from '../shared/protocol';
import { log } from './log';
import { openFailedText } from './messages';
import { retryStuckPage, watchPageStart } from './pageStart';
import { fileOverview } from './overview';
import { chooseWeights, chosenWeights } from './weightsChoice';
import { webviewHtml, webviewOptions } from './webviewHtml';

export const MODEL_VIEWER = 'replens.modelViewer';

/** Read-only editor for model files: RepLens never edits a model in place. */
export class ModelEditorProvider implements vscode.CustomReadonlyEditorProvider {
  /** Editors opened again in place of one whose page did not start, by file; forgotten once a page starts or the user is told. */
  private readonly restarts = new Map<string, number>();

  constructor(private readonly extensionUri: vscode.Uri) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    const webview = panel.webview;
    const page = watchPageStart(
      panel,
      () =>
        void this.pageDidNotStart(document.uri, panel).catch((e: unknown) =>
          log().error(`Could not open the model editor of ${document.uri.fsPath} again: ${messageOf(e)}`),
        ),
    );
    webview.options = webviewOptions;
    webview.html = webviewHtml(this.extensionUri, 'editor', path.basename(document.uri.fsPath));
    const post = (message: HostMessage) => void webview.postMessage(message);

    const subscription = webview.onDidReceiveMessage(async (raw: unknown) => {
      const message = parseWebviewMessage(raw);
      if (!message) {
        log().warn(`Ignored an unknown message from the model editor webview: ${JSON.stringify(raw)?.slice(0, 200)}`);
        return;
      }
      switch (message.type) {
        case 'ready':
          page.started();
          this.restarts.delete(document.uri.fsPath);
          post(await overviewMessage(document.uri));
          break;
        case 'reopenAsText':
          await vscode.commands.executeCommand('vscode.openWith', document.uri, 'default');
          break;
        case 'chooseWeights':
          chooseWeights(document.uri.fsPath, message.key);
          post(await overviewMessage(document.uri));
          break;
        case 'runAction':
          // The file is always this editor's own document: nothing path-like comes from the webview.
          await vscode.commands.executeCommand(`replens.${message.action}`, document.uri);
          break;
      }
    });
    panel.onDidDispose(() => {
      subscription.dispose();
      page.dispose();
    });
  }

  /** A shown editor whose page never started is opened again in its place. */
  private async pageDidNotStart(uri: vscode.Uri, panel: vscode.WebviewPanel): Promise<void> {
    const tries = this.restarts.get(uri.fsPath) ?? 0;
    const retry = retryStuckPage(tries, 'model editor', uri.fsPath, 'close its tab and open the file again');
    // Once the user has been told, the editor they open next gets tries of its own.
    if (!retry) {
      this.restarts.delete(uri.fsPath);
      return;
    }
    this.restarts.set(uri.fsPath, tries + 1);
    // A hidden editor loses its frame and gets a new one when shown again, so the file is opened in front
    // of it with the default editor, then in it again. Closing and reopening it could close its group.
    const where = { viewColumn: panel.viewColumn, preserveFocus: true, preview: false };
    const textTabs = () =>
      vscode.window.tabGroups.all
        .find((group) => group.viewColumn === where.viewColumn)
        ?.tabs.filter((t) => t.input instanceof vscode.TabInputText && t.input.uri.toString() === uri.toString()) ?? [];
    const hadText = textTabs().length > 0;
    await vscode.commands.executeCommand('vscode.openWith', uri, 'default', where);
    await vscode.commands.executeCommand('vscode.openWith', uri, MODEL_VIEWER, where);
    // A text tab the user had stays.
    if (!hadText) await vscode.window.tabGroups.close(textTabs(), true);
  }
}

async function overviewMessage(uri: vscode.Uri): Promise<HostMessage> {
  try {
    const started = performance.now();
    const overview = await fileOverview(uri.fsPath, chosenWeights(uri.fsPath));
    const ms = Math.round(performance.now() - started);
    log().info(
      `Opened ${uri.fsPath}: ${overview.kindLabel}, ${overview.sizeBytes} bytes, read in ${ms} ms${overview.readError ? ` — ${overview.readError}` : ''}`,
    );
    return { type: 'overview', overview };
  } catch (e) {
    // The log keeps the full path: an error that names its file has it in its message already.
    log().error(`Could not open ${errorFile(e) === undefined ? `${uri.fsPath}: ` : ''}${messageOf(e)}`);
    return { type: 'error', message: openFailedText(uri.fsPath, e) };
  }
}
