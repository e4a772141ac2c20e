import * as vscode from 'vscode';
import { convertToDeploy } from './commands/convertToDeploy';
import { log } from './log';
import { MODEL_VIEWER, ModelEditorProvider } from './modelEditor';
import { activeModelUri, targetModelUri } from './modelFiles';
import { StructureTreeProvider } from './structureTree';

export function activate(context: vscode.ExtensionContext): void {
  const structure = new StructureTreeProvider();
  const followActiveEditor = () => {
    const uri = activeModelUri();
    if (uri) void structure.show(uri);
  };
  const watcher = vscode.workspace.createFileSystemWatcher('**/*.{pth,pt,ckpt,tar,onnx,safetensors}');

  context.subscriptions.push(
    vscode.window.registerCustomEditorProvider(MODEL_VIEWER, new ModelEditorProvider(context.extensionUri), {
      supportsMultipleEditorsPerDocument: true,
    }),
    vscode.window.createTreeView('replens.structure', { treeDataProvider: structure, showCollapseAll: true }),
    vscode.commands.registerCommand('replens.showStructure', async (arg: unknown) => {
      const uri = targetModelUri(arg);
      if (!uri) {
        void vscode.window.showInformationMessage('RepLens: open or select a model file first.');
        return;
      }
      await vscode.commands.executeCommand('replens.structure.focus');
      await structure.show(uri);
    }),
    vscode.commands.registerCommand('replens.convertToDeploy', (arg: unknown) =>
      convertToDeploy(arg, (result) => structure.invalidate(vscode.Uri.file(result.output))),
    ),
    vscode.window.tabGroups.onDidChangeTabs(followActiveEditor),
    watcher,
    watcher.onDidChange((uri) => structure.invalidate(uri)),
  );
  followActiveEditor();
  log().info('RepLens activated');
}

export function deactivate(): void {}
