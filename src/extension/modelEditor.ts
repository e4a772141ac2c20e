import * as path from 'node:path';
import * as vscode from 'vscode';
import { probeFile } from '../core/formats/probe';
import { parseWebviewMessage, type HostMessage } from '../shared/protocol';
import { log } from './log';
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
    webview.options = webviewOptions(this.extensionUri);
    webview.html = webviewHtml(webview, this.extensionUri, 'editor', path.basename(document.uri.fsPath));
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
      }
    });
    panel.onDidDispose(() => subscription.dispose());
  }
}

async function overviewMessage(uri: vscode.Uri): Promise<HostMessage> {
  const fileName = path.basename(uri.fsPath);
  try {
    const probe = await probeFile(uri.fsPath);
    log().info(`Opened ${uri.fsPath}: ${probe.kindLabel}, ${probe.sizeBytes} bytes`);
    return { type: 'overview', overview: { fileName, sizeBytes: probe.sizeBytes, kind: probe.kind, kindLabel: probe.kindLabel } };
  } catch (e) {
    const message = `${fileName}: ${e instanceof Error ? e.message : String(e)}`;
    log().error(message);
    return { type: 'error', message };
  }
}
