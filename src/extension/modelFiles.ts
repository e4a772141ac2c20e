import * as vscode from 'vscode';
import { MODEL_VIEWER } from './modelEditor';

/** The model file shown in the active editor tab, if it is a RepLens model editor. */
export function activeModelUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom && input.viewType === MODEL_VIEWER ? input.uri : undefined;
}

/** A command's target: the Explorer item it was invoked on, else the active model editor. */
export function targetModelUri(arg: unknown): vscode.Uri | undefined {
  return arg instanceof vscode.Uri ? arg : activeModelUri();
}
