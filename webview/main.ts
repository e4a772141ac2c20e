import type { HostMessage, WebviewMessage } from '../src/shared/protocol';
import { renderError, renderOverview } from './editorView';
import { progressRing } from './toolkit';

declare function acquireVsCodeApi(): { postMessage(message: WebviewMessage): void };

const vscode = acquireVsCodeApi();
const root = document.getElementById('root') as HTMLElement;
const send = (m: WebviewMessage) => vscode.postMessage(m);

root.replaceChildren(progressRing());

window.addEventListener('message', (event: MessageEvent<HostMessage>) => {
  const message = event.data;
  switch (message.type) {
    case 'overview':
      renderOverview(root, message.overview, send);
      break;
    case 'error':
      renderError(root, message.message);
      break;
  }
});

send({ type: 'ready' });
