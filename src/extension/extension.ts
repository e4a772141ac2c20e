import * as vscode from 'vscode';
import { log } from './log';
import { MODEL_VIEWER, ModelEditorProvider } from './modelEditor';

export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(
    vscode.window.registerCustomEditorProvider(MODEL_VIEWER, new ModelEditorProvider(context.extensionUri), {
      supportsMultipleEditorsPerDocument: true,
      webviewOptions: { retainContextWhenHidden: false },
    }),
  );
  log().info('RepLens activated');
}

export function deactivate(): void {}
