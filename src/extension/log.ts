import * as vscode from 'vscode';

let channel: vscode.LogOutputChannel | undefined;

/** The "RepLens" output channel; created on first use so activation stays cheap. */
export function log(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel('RepLens', { log: true });
  return channel;
}
