import * as vscode from 'vscode';
import { ReportStore } from '../core/report/reportStore';
import { parseSavedReportRef } from '../shared/protocol';
import { checkParityCommand, openReportCommand, showReport } from './commands/checkParity';
import { convertToDeploy } from './commands/convertToDeploy';
import { log } from './log';
import { MODEL_VIEWER, ModelEditorProvider } from './modelEditor';
import { activeModelUri, targetModelUri } from './modelFiles';
import { REPORT_VIEW, ReportPanels } from './reportPanel';
import { parityAfterConvert } from './settings';
import { onDidChooseWeights } from './weightsChoice';
import { StructureTreeProvider, type Node } from './structureTree';

export function activate(context: vscode.ExtensionContext): void {
  const structure = new StructureTreeProvider();
  const followActiveEditor = () => {
    const uri = activeModelUri();
    if (uri) void structure.show(uri);
  };
  const watcher = vscode.workspace.createFileSystemWatcher('**/*.{pth,pt,ckpt,tar,onnx,safetensors}');
  const treeView = vscode.window.createTreeView<Node>('replens.structure', { treeDataProvider: structure, showCollapseAll: true });
  const reports = new ReportPanels({
    extensionUri: context.extensionUri,
    store: new ReportStore(vscode.Uri.joinPath(context.globalStorageUri, 'reports').fsPath),
    onSelectBlock: (block) => {
      const node = structure.blockNode(block);
      if (node && treeView.visible) void treeView.reveal(node, { select: true, focus: false, expand: true });
    },
    rerun: (input, deploy) => void showReport(reports, context.extensionUri, input, deploy),
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
      await vscode.commands.executeCommand('replens.structure.focus');
      await structure.show(uri);
    }),
    vscode.commands.registerCommand('replens.convertToDeploy', (arg: unknown) =>
      convertToDeploy(arg, (result) => {
        structure.invalidate(vscode.Uri.file(result.output));
        if (parityAfterConvert()) void showReport(reports, context.extensionUri, result.input, result.output, result.load);
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
