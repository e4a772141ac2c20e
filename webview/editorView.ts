import type { FileOverview, WebviewMessage } from '../src/shared/protocol';
import { formatBytes, h } from './dom';
import { badge, button } from './toolkit';

/** The model editor's overview of one file. */
export function renderOverview(root: HTMLElement, overview: FileOverview, send: (m: WebviewMessage) => void): void {
  const known = overview.kind !== 'text' && overview.kind !== 'unknown';
  const header = h('header', { class: 'title' }, h('h1', {}, overview.fileName), badge(overview.kindLabel));
  const facts = h(
    'dl',
    { class: 'facts' },
    h('dt', {}, 'Format'),
    h('dd', { 'data-testid': 'format' }, overview.kindLabel),
    h('dt', {}, 'Size'),
    h('dd', {}, `${formatBytes(overview.sizeBytes)} (${overview.sizeBytes.toLocaleString('en-US')} bytes)`),
  );
  const children: Node[] = [header, facts];
  if (overview.kind === 'text') {
    children.push(
      h('p', { class: 'notice', 'data-testid': 'notice' }, 'This is a text file (for example a Python path configuration .pth), not a model.'),
      button('Reopen as Text', () => send({ type: 'reopenAsText' })),
    );
  } else if (!known) {
    children.push(h('p', { class: 'notice error', 'data-testid': 'notice' }, 'Not a model file: the first bytes match no PyTorch, ONNX or safetensors layout.'));
  }
  root.replaceChildren(h('section', { 'data-testid': 'replens-editor', class: 'editor' }, ...children));
}

export function renderError(root: HTMLElement, message: string): void {
  root.replaceChildren(h('section', { 'data-testid': 'replens-editor', class: 'editor' }, h('p', { class: 'notice error', 'data-testid': 'notice' }, message)));
}
