import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('vscode', () => import('./vscodeMock').then((m) => m.vscode));
vi.mock('../../../src/extension/webviewHtml', () => ({
  webviewHtml: (_extension: unknown, view: string, title: string) => `<page ${view}: ${title}>`,
  webviewOptions: {},
}));
import { FakeWebviewPanel, vscode } from './vscodeMock';

const { MODEL_VIEWER, ModelEditorProvider } = await import('../../../src/extension/modelEditor');
const { PAGE_START_MS } = await import('../../../src/extension/pageStart');
const { log } = await import('../../../src/extension/log');

const model = vscode.Uri.file('/models/repvgg_a0_train.pth');

/** The first column, holding the model editor's tab and, if `text`, a text editor's tab of the same file. */
function firstGroup(text = false) {
  const group = { viewColumn: 1, tabs: [{ input: new vscode.TabInputCustom(model, MODEL_VIEWER) as unknown }] };
  if (text) group.tabs.push({ input: new vscode.TabInputText(model) });
  vscode.window.tabGroups.all = [group];
  // Opened with the default editor, the file gets a text tab in the group, if it has none.
  vi.mocked(vscode.commands.executeCommand).mockImplementation((...[command, , editor]: unknown[]) => {
    if (command === 'vscode.openWith' && editor === 'default' && !group.tabs.some((t) => t.input instanceof vscode.TabInputText))
      group.tabs.push({ input: new vscode.TabInputText(model) });
    return Promise.resolve(undefined);
  });
  return group;
}

/** The provider resolving an editor for `model` in the first column. */
function openEditor(provider: InstanceType<typeof ModelEditorProvider>) {
  const panel = new FakeWebviewPanel(MODEL_VIEWER, 'repvgg_a0_train.pth', 1);
  provider.resolveCustomEditor({ uri: model, dispose: () => undefined } as never, panel as never);
  return panel;
}

const reopened = () => vi.mocked(vscode.commands.executeCommand).mock.calls.filter(([command]) => command === 'vscode.openWith');

beforeEach(() => vi.useFakeTimers());
afterEach(() => {
  vi.useRealTimers();
  vi.clearAllMocks();
});

describe('a model editor whose page does not start', () => {
  it('is shown again in its column, in front of a default editor that is then closed', async () => {
    const group = firstGroup();
    const provider = new ModelEditorProvider(vscode.Uri.file('/extension') as never);
    const panel = openEditor(provider);
    expect(panel.webview.html).toBe('<page editor: repvgg_a0_train.pth>');
    await vi.advanceTimersByTimeAsync(PAGE_START_MS - 1);
    expect(reopened()).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    const where = { viewColumn: 1, preserveFocus: true, preview: false };
    expect(reopened()).toEqual([
      ['vscode.openWith', model, 'default', where],
      ['vscode.openWith', model, MODEL_VIEWER, where],
    ]);
    expect(vi.mocked(vscode.window.tabGroups.close)).toHaveBeenCalledExactlyOnceWith([group.tabs[1]], true);
  });

  it('logs a failure to open it again, and nothing is left unhandled', async () => {
    firstGroup();
    vi.mocked(vscode.commands.executeCommand).mockRejectedValue(new Error('no editor for that'));
    openEditor(new ModelEditorProvider(vscode.Uri.file('/extension') as never));
    await vi.advanceTimersByTimeAsync(PAGE_START_MS);
    expect(vi.mocked(log().error)).toHaveBeenCalledWith(`Could not open the model editor of ${model.fsPath} again: no editor for that`);
  });

  it('leaves a text tab of the file the user had open', async () => {
    firstGroup(true);
    openEditor(new ModelEditorProvider(vscode.Uri.file('/extension') as never));
    await vi.advanceTimersByTimeAsync(PAGE_START_MS);
    expect(reopened()).toHaveLength(2);
    expect(vscode.window.tabGroups.close).not.toHaveBeenCalled();
  });

  it('is left alone when it starts in time, or while hidden', async () => {
    firstGroup();
    const provider = new ModelEditorProvider(vscode.Uri.file('/extension') as never);
    // Its overview is read once the page starts; what it says is for other tests.
    openEditor(provider).send({ type: 'ready' });
    const hidden = openEditor(provider);
    hidden.setVisible(false);
    await vi.advanceTimersByTimeAsync(10 * PAGE_START_MS);
    expect(reopened()).toHaveLength(0);
    expect(vscode.window.tabGroups.close).not.toHaveBeenCalled();
  });

  it('is opened again twice, then the user is told what to do, once; an editor opened after that gets tries of its own', async () => {
    firstGroup();
    const provider = new ModelEditorProvider(vscode.Uri.file('/extension') as never);
    const stuckPage = async () => {
      openEditor(provider);
      await vi.advanceTimersByTimeAsync(PAGE_START_MS);
    };
    const reopenedInViewer = () => reopened().filter(([, , editor]) => editor === MODEL_VIEWER);
    for (let i = 0; i < 3; i++) await stuckPage();
    expect(reopenedInViewer()).toHaveLength(2);
    expect(vi.mocked(vscode.window.showErrorMessage)).toHaveBeenCalledExactlyOnceWith(
      'RepLens: The model editor of repvgg_a0_train.pth did not load after 3 tries: close its tab and open the file again.',
    );
    // The user closed the tab and opened the file again, as told, and its page did not start either.
    await stuckPage();
    expect(reopenedInViewer()).toHaveLength(3);
    expect(vi.mocked(vscode.window.showErrorMessage)).toHaveBeenCalledOnce();
  });
});
