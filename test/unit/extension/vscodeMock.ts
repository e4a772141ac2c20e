import * as path from 'node:path';
import { vi } from 'vitest';

/**
 * Just enough of the VS Code API for the extension's commands under vitest: toasts are recorded,
 * progress runs the task at once. A test file mocks 'vscode' with it:
 *   vi.mock('vscode', () => import('./vscodeMock').then((m) => m.vscode));
 */
class Uri {
  constructor(readonly fsPath: string) {}
  static file(fsPath: string) {
    return new Uri(fsPath);
  }
  static joinPath(base: Uri, ...parts: string[]) {
    return new Uri(path.join(base.fsPath, ...parts));
  }
}
const answer = () => Promise.resolve(undefined);

export const vscode = {
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
