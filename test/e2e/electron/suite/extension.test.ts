// Runs inside a real extension host (desktop VS Code via @vscode/test-electron, or
// code-server's remote extension host via scripts/e2e.mjs) against the built
// extension, with the sample models as the workspace.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

const EXTENSION_ID = 'replens.replens';
const VIEW_TYPE = 'replens.modelViewer';

function sample(name: string): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the tests expect the sample models folder to be open');
  return vscode.Uri.joinPath(folder.uri, name);
}

function activeCustomEditor(): vscode.TabInputCustom {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  assert.ok(input instanceof vscode.TabInputCustom, `active tab is not a custom editor: ${JSON.stringify(input)}`);
  return input;
}

suite('RepLens in the extension host', () => {
  teardown(() => vscode.commands.executeCommand('workbench.action.closeAllEditors'));

  test('the extension is present and activates', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is not installed`);
    await ext.activate();
    assert.equal(ext.isActive, true);
  });

  test('every contributed command is registered', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext);
    await ext.activate();
    const declared: string[] = (ext.packageJSON.contributes?.commands ?? []).map((c: { command: string }) => c.command);
    assert.ok(declared.length > 0, 'package.json contributes no commands');
    const registered = new Set(await vscode.commands.getCommands(true));
    assert.deepEqual(
      declared.filter((c) => !registered.has(c)),
      [],
    );
  });

  test('vscode.openWith opens a checkpoint in the model viewer', async () => {
    const uri = sample('repvgg_tiny_train.pth');
    await vscode.commands.executeCommand('vscode.openWith', uri, VIEW_TYPE);
    const input = activeCustomEditor();
    assert.equal(input.viewType, VIEW_TYPE);
    assert.equal(input.uri.toString(), uri.toString());
  });

  test('the model viewer is the default editor for .pth files', async () => {
    const uri = sample('repvgg_tiny_train.pth');
    await vscode.commands.executeCommand('vscode.open', uri);
    assert.equal(activeCustomEditor().viewType, VIEW_TYPE);
  });
});
