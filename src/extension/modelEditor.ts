import * as path from 'node:path';
import * as vscode from 'vscode';
import { errorFile, messageOf } from '../core/formats/errors';
import { parseWebviewMessage, type HostMessage } from '../shared/protocol';
import { log } from './log';
import { openFailedText } from './messages';
import { fileOverview } from './overview';
import { chooseWeights, chosenWeights } from './weightsChoice';
import { webviewHtml, webviewOptions } from './webviewHtml';

export const MODEL_VIEWER = 'replens.modelViewer';

/** Read-only editor for model files: RepLens never edits a model in place. */
export class ModelEditorProvider implements vscode.CustomReadonlyEditorProvider {
  constructor(private readonly extensionUri: vscode.Uri) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    const webview = panel.webview;
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
    panel.onDidDispose(() => subscription.dispose());
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
