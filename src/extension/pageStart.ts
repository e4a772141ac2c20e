import * as path from 'node:path';
import * as vscode from 'vscode';
import { log } from './log';

/** How long a shown page may take to say 'ready' before it is taken for stuck; pages start in 0.4–5 s even on a busy 2-core machine. */
export const PAGE_START_MS = 10_000;
/** New pages opened in place of one that did not start, before giving up. */
const PAGE_RESTARTS = 2;

/** Whether the page in a panel has started, and a call to `stuck` when a shown page does not. */
export interface PageStart {
  /** The page said 'ready' and is still there. */
  readonly ready: boolean;
  /** The page said 'ready'. */
  started(): void;
  dispose(): void;
}

/**
 * Watches the page of `panel`: each time the panel is shown without a started page (a hidden panel
 * loses its page), `stuck` is called if none says 'ready' within PAGE_START_MS.
 *
 * Why: VS Code's webview frame waits for its service worker before it loads the page at all. After a
 * window reload restores several webviews at once, each registers its own worker and waits for the
 * one that controls it to change; when that change came before it started waiting, the frame stays
 * blank for good (as far as we could tell; the page itself never runs), and setting the HTML again goes
 * through the same frame. Only a new frame recovers: a new panel, or the same one hidden and shown again.
 */
export function watchPageStart(panel: vscode.WebviewPanel, stuck: () => void): PageStart {
  let ready = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const disarm = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  const arm = () => {
    disarm();
    if (panel.visible && !ready)
      timer = setTimeout(() => {
        timer = undefined;
        if (panel.visible && !ready) stuck();
      }, PAGE_START_MS);
  };
  const viewState = panel.onDidChangeViewState(() => {
    if (!panel.visible) {
      ready = false;
      disarm();
    } else if (!ready && timer === undefined) {
      arm();
    }
  });
  arm();
  return {
    get ready() {
      return ready;
    },
    started() {
      ready = true;
      disarm();
    },
    dispose() {
      disarm();
      viewState.dispose();
    },
  };
}

/**
 * Whether to open a new page in place of one that did not start, when `tries` new ones were opened
 * already for the `view` of `file`. Each retry is logged; the user is told once when they run out.
 */
export function retryStuckPage(tries: number, view: string, file: string, remedy: string): boolean {
  if (tries < PAGE_RESTARTS) {
    log().warn(`The ${view} of ${file} did not start within ${PAGE_START_MS / 1000} s, so it is opened again.`);
    return true;
  }
  if (tries === PAGE_RESTARTS) {
    const message = `The ${view} of ${path.basename(file)} did not load after ${PAGE_RESTARTS + 1} tries: ${remedy}.`;
    log().error(`${message} (${file})`);
    void vscode.window.showErrorMessage(`RepLens: ${message}`);
  }
  return false;
}
