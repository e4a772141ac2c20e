import * as path from 'node:path';
import { vi } from 'vitest';

/**
 * Just enough of the VS Code API for the extension's commands and panels under vitest: toasts are
 * recorded, progress runs the task at once, webview panels are FakeWebviewPanels. A test file mocks 'vscode' with it:
 *   vi.mock('vscode', () => import('./vscodeMock').then((m) => m.vscode));
 */
class Uri {
  constructor(readonly fsPath: string) {}
  toString(): string {
    return `file://${this.fsPath}`;
  }
  static file(fsPath: string) {
    return new Uri(fsPath);
  }
  static joinPath(base: Uri, ...parts: string[]) {
    return new Uri(path.join(base.fsPath, ...parts));
  }
}
const answer = () => Promise.resolve(undefined);

class EventEmitter<T> {
  private readonly listeners = new Set<(e: T) => unknown>();
  event = (listener: (e: T) => unknown) => {
    this.listeners.add(listener);
    return { dispose: () => void this.listeners.delete(listener) };
  };
  fire(e: T): void {
    for (const listener of [...this.listeners]) listener(e);
  }
}

/** A webview panel whose page is played by the test: `send` is a message from the page, `posted` what the host sent it. */
export class FakeWebviewPanel {
  visible = true;
  disposed = false;
  iconPath: unknown;
  readonly posted: { type: string }[] = [];
  private readonly received = new EventEmitter<unknown>();
  private readonly viewState = new EventEmitter<void>();
  private readonly disposing = new EventEmitter<void>();
  readonly webview = {
    options: {},
    html: '',
    postMessage: (message: { type: string }) => {
      this.posted.push(message);
      return Promise.resolve(true);
    },
    onDidReceiveMessage: this.received.event,
  };
  readonly onDidChangeViewState = this.viewState.event;
  readonly onDidDispose = this.disposing.event;

  constructor(
    readonly viewType: string,
    readonly title: string,
    readonly viewColumn: number | undefined,
  ) {}

  send(message: unknown): void {
    this.received.fire(message);
  }

  /** The user shows or hides the panel's tab. */
  setVisible(visible: boolean): void {
    this.visible = visible;
    this.viewState.fire();
  }

  reveal(): void {
    this.setVisible(true);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.visible = false;
    this.disposing.fire();
  }
}

/** Every panel the extension created, oldest first. */
export const createdPanels: FakeWebviewPanel[] = [];

export const vscode = {
  Uri,
  TabInputText: class {
    constructor(readonly uri: Uri) {}
  },
  TabInputCustom: class {
    constructor(
      readonly uri: Uri,
      readonly viewType: string,
    ) {}
  },
  EventEmitter,
  ViewColumn: { Active: -1, Beside: -2, One: 1, Two: 2 },
  ProgressLocation: { Notification: 15 },
  window: {
    showInformationMessage: vi.fn(answer),
    showErrorMessage: vi.fn(answer),
    showWarningMessage: vi.fn(answer),
    withProgress: (_options: unknown, task: (progress: unknown, token: unknown) => unknown) =>
      task({ report: () => undefined }, { onCancellationRequested: () => ({ dispose: () => undefined }) }),
    createOutputChannel: () => ({ info: vi.fn(), warn: vi.fn(), error: vi.fn() }),
    createWebviewPanel: (viewType: string, title: string, show: { viewColumn: number }) => {
      const panel = new FakeWebviewPanel(viewType, title, show.viewColumn);
      createdPanels.push(panel);
      return panel;
    },
    tabGroups: {
      activeTabGroup: { activeTab: undefined },
      all: [] as { viewColumn: number; tabs: { input: unknown }[] }[],
      close: vi.fn(() => Promise.resolve(true)),
    },
  },
  workspace: { getConfiguration: () => ({ get: <T>(_key: string, fallback: T) => fallback }) },
  commands: { executeCommand: vi.fn((..._args: unknown[]) => answer()) },
};
