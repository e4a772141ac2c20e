import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as vscode from 'vscode';
import { webviewPage } from '../shared/webviewPage';

/** RepLens webviews run their own script and load nothing: the page carries all they need. */
export const webviewOptions: vscode.WebviewOptions = { enableScripts: true, localResourceRoots: [] };

/** The bundle and stylesheet, read once: every page of every panel carries them. */
let parts: { script: string; style: string } | undefined;

/** The page of a RepLens webview: the editor's or the report's, titled `title`. */
export function webviewHtml(extensionUri: vscode.Uri, view: 'editor' | 'report', title: string): string {
  parts ??= {
    script: readFileSync(vscode.Uri.joinPath(extensionUri, 'dist', 'webview.js').fsPath, 'utf8'),
    style: readFileSync(vscode.Uri.joinPath(extensionUri, 'media', 'replens.css').fsPath, 'utf8'),
  };
  return webviewPage({ view, title, ...parts, nonce: randomBytes(16).toString('base64') });
}
