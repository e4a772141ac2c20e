import type { HostMessage, WebviewMessage } from '../src/shared/protocol';
import { renderError, renderOverview } from './editorView';
import { ReportView, type WebviewApi } from './report/reportView';
import { progressRing } from './toolkit';

declare function acquireVsCodeApi(): WebviewApi;

// VS Code allows one acquireVsCodeApi() call per page; every view shares this handle.
const vscode = acquireVsCodeApi();
const root = document.getElementById('root') as HTMLElement;
const send = (m: WebviewMessage) => vscode.postMessage(m);

if (document.body.dataset.view === 'report') {
  const report = new ReportView(root, vscode);
  window.addEventListener('message', (event: MessageEvent<HostMessage>) => report.handle(event.data));
  report.start();
} else {
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
}

send({ type: 'ready' });
