import * as vscode from 'vscode';
import { ReportStore } from '../core/report/reportStore';
import { MODEL_SUFFIXES } from '../core/formats/modelFileNames';
import { parseSavedReportRef } from '../shared/protocol';
import { checkParityCommand, openReportCommand, showReport } from './commands/checkParity';
import { convertToDeploy } from './commands/convertToDeploy';
import { measureInt8 } from './commands/measureInt8';
import { log } from './log';
import { MODEL_VIEWER, ModelEditorProvider } from './modelEditor';
import { activeModelUri, targetModelUri } from './modelFiles';
import { REPORT_VIEW, ReportPanels } from './reportPanel';
import { parityAfterConvert } from './settings';
import { onDidChooseWeights } from './weightsChoice';
import { StructureTreeProvider, type TreeRow } from './structureTree';

export function activate(context: vscode.ExtensionContext): void {
  const structure = new StructureTreeProvider();
  const followActiveEditor = () => {
    const uri = activeModelUri();
    if (uri) void structure.show(uri);
  };
  const watcher = vscode.workspace.createFileSystemWatcher(`**/*{${MODEL_SUFFIXES.join(',')}}`);
  const treeView = vscode.window.createTreeView<TreeRow>('replens.structure', { treeDataProvider: structure, showCollapseAll: true });
  const reports = new ReportPanels({
    extensionUri: context.extensionUri,
    store: new ReportStore(vscode.Uri.joinPath(context.globalStorageUri, 'reports').fsPath),
    onSelectBlock: (block) => {
      const node = structure.blockNode(block);
      if (node && treeView.visible) void treeView.reveal(node, { select: true, focus: false, expand: true });
    },
    rerun: (input, deploy) => void showReport(reports, context.extensionUri, input, deploy),
    measureInt8: (input) => measureInt8(context.extensionUri, input),
  });

  context.subscriptions.push(
    vscode.window.registerCustomEditorProvider(MODEL_VIEWER, new ModelEditorProvider(context.extensionUri), {
      supportsMultipleEditorsPerDocument: true,
    }),
    treeView,
    treeView.onDidChangeSelection((e) => {
      const node = e.selection[0];
      if (node?.kind === 'block') reports.revealBlock(node.block.name);
    }),
    vscode.window.registerWebviewPanelSerializer(REPORT_VIEW, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown) {
        const ref = parseSavedReportRef(state);
        if (ref) {
          await reports.restore(panel, ref);
        } else {
          log().warn(`Closed a restored report panel whose saved state names no report: ${JSON.stringify(state)?.slice(0, 200)}`);
          panel.dispose();
        }
      },
    }),
    vscode.commands.registerCommand('replens.checkParity', (arg: unknown) => checkParityCommand(arg, reports, context.extensionUri)),
    vscode.commands.registerCommand('replens.openReport', (arg: unknown) => openReportCommand(arg, reports, context.extensionUri)),
    vscode.commands.registerCommand('replens.showStructure', async (arg: unknown) => {
      const uri = targetModelUri(arg);
      if (!uri) {
        void vscode.window.showInformationMessage('RepLens: open or select a model file first.');
        return;
      }
      // The view stays in the Explorer, beside Outline and Timeline, which also follow the active editor. There VS Code
      // starts every contributed view collapsed and ignores `visibility` and `initialSize`, so this command opens it:
      // `.focus` expands the view and moves the keyboard into it while the file is read, then reveal() selects and
      // expands the model's row.
      await vscode.commands.executeCommand('replens.structure.focus');
      await structure.show(uri);
      const [root] = structure.getChildren();
      if (root) await treeView.reveal(root, { select: true, focus: true, expand: true });
    }),
    vscode.commands.registerCommand('replens.convertToDeploy', (arg: unknown) =>
      convertToDeploy(arg, (result) => {
        structure.invalidate(vscode.Uri.file(result.output));
        return parityAfterConvert() ? showReport(reports, context.extensionUri, result.input, result.output, result.load) : undefined;
      }),
    ),
    vscode.window.tabGroups.onDidChangeTabs(followActiveEditor),
    watcher,
    watcher.onDidChange((uri) => structure.invalidate(uri)),
    // Another set of a checkpoint's weights can hold other blocks' values and even other blocks.
    onDidChooseWeights((file) => structure.invalidate(vscode.Uri.file(file))),
  );
  followActiveEditor();
  log().info('RepLens activated');
}

export function deactivate(): void {}
