import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fixtureIn } from '../convert/outputChecks';

/** Just enough of the VS Code API for the command: messages are recorded, progress runs the task at once. */
const vscode = vi.hoisted(() => {
  class Uri {
    constructor(readonly fsPath: string) {}
    static file(fsPath: string) {
      return new Uri(fsPath);
    }
  }
  const answer = () => Promise.resolve(undefined);
  return {
    Uri,
    TabInputCustom: class {},
    EventEmitter: class {
      event = () => ({ dispose: () => undefined });
      fire(): void {}
    },
    ProgressLocation: { Notification: 15 },
    window: {
      showInformationMessage: vi.fn(answer),
      showErrorMessage: vi.fn(answer),
      showWarningMessage: vi.fn(answer),
      withProgress: (_options: unknown, task: (progress: unknown, token: unknown) => unknown) =>
        task({ report: () => undefined }, { onCancellationRequested: () => ({ dispose: () => undefined }) }),
      createOutputChannel: () => ({ info: () => undefined, warn: () => undefined, error: () => undefined }),
      tabGroups: { activeTabGroup: { activeTab: undefined } },
    },
    workspace: { getConfiguration: () => ({ get: <T>(_key: string, fallback: T) => fallback }) },
    commands: { executeCommand: vi.fn() },
  };
});
vi.mock('vscode', () => vscode);

const { convertToDeploy } = await import('../../../src/extension/commands/convertToDeploy');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-command-'));
  vi.clearAllMocks();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const messages = (fn: { mock: { calls: unknown[][] } }) => fn.mock.calls.map((c) => c[0]);

describe('Convert to Deploy in the extension', () => {
  it('a second Convert of a file still being converted says so and starts nothing', async () => {
    const input = await fixtureIn(dir, 'repvgg_tiny_train.pth');
    const converted = vi.fn();
    const first = convertToDeploy(vscode.Uri.file(input), converted);
    const second = await convertToDeploy(vscode.Uri.file(input), converted);
    expect(second).toBeUndefined();
    expect(messages(vscode.window.showInformationMessage)).toEqual(['RepLens: repvgg_tiny_train.pth is already being converted.']);

    const result = await first;
    expect(result?.blocksFused).toBe(7);
    expect(converted).toHaveBeenCalledTimes(1);
    expect(messages(vscode.window.showErrorMessage)).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual(['repvgg_tiny_train.deploy.pth', 'repvgg_tiny_train.pth']);
  });

  it('once a conversion has ended, the file can be converted again', async () => {
    const input = await fixtureIn(dir, 'repvgg_tiny_train.pth');
    await convertToDeploy(vscode.Uri.file(input), () => undefined);
    // The output is there now: the command asks before replacing it (and the mock declines).
    expect(await convertToDeploy(vscode.Uri.file(input), () => undefined)).toBeUndefined();
    expect(messages(vscode.window.showWarningMessage)).toEqual(['repvgg_tiny_train.deploy.pth already exists. Replace it?']);
    expect(messages(vscode.window.showInformationMessage).filter((m) => /already being converted/.test(String(m)))).toEqual([]);

    // A failed conversion releases the file too.
    const broken = await fixtureIn(dir, 'truncated_train.pth');
    await convertToDeploy(vscode.Uri.file(broken), () => undefined);
    await convertToDeploy(vscode.Uri.file(broken), () => undefined);
    expect(messages(vscode.window.showErrorMessage)).toHaveLength(2);
    expect(messages(vscode.window.showErrorMessage).every((m) => /could not convert truncated_train\.pth/.test(String(m)))).toBe(true);
  });
});
