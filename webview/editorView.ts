import type { FileOverview, StructureSummary, WebviewMessage } from '../src/shared/protocol';
import { formatBytes } from '../src/shared/format';
import { fileName, h } from './dom';
import { badge, button, dropdown } from './toolkit';

function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** Which of a training checkpoint's weights are shown and converted, with a choice when there are several. */
function weightsFacts(w: NonNullable<StructureSummary['weights']>, send: (m: WebviewMessage) => void): Node[] {
  const why = w.reason === 'chosen' ? 'picked here' : w.reason;
  const value =
    w.slots.length > 1
      ? dropdown(w.slots, w.key, (key) => send({ type: 'chooseWeights', key }), { 'data-testid': 'weights-choice', 'aria-label': 'Weights to read' })
      : h('code', {}, w.key);
  return [h('dt', {}, 'Weights'), h('dd', { 'data-testid': 'weights' }, value, h('span', { class: 'rl-muted' }, ` ${why}`))];
}

function structureSection(s: StructureSummary, send: (m: WebviewMessage) => void): Node[] {
  const facts = h(
    'dl',
    { class: 'facts', 'data-testid': 'structure-facts' },
    ...(s.weights ? weightsFacts(s.weights, send) : []),
    h('dt', {}, 'Family'),
    h('dd', { 'data-testid': 'family' }, s.family),
    h('dt', {}, 'Architecture'),
    h('dd', { 'data-testid': 'architecture' }, s.architecture),
    h('dt', {}, 'Form'),
    h('dd', { 'data-testid': 'form' }, s.form),
    h('dt', {}, 'Tensors'),
    h('dd', {}, count(s.tensors)),
    h('dt', {}, 'Parameters'),
    h('dd', {}, `${count(s.paramsTotal)} → ${count(s.paramsAfterFusion)} after fusion`),
  );
  const nodes: Node[] = [h('h2', {}, 'Structure'), facts];
  if (s.stages.length === 0) {
    nodes.push(h('p', { class: 'notice' }, 'No re-parameterizable blocks (RepVGG, RepConv, MobileOne, …) were found in this file.'));
  } else {
    const rows = s.stages.map((st) =>
      h(
        'tr',
        {},
        h('td', {}, st.name),
        h('td', { class: 'num' }, String(st.blocks)),
        h('td', { class: 'num' }, `${st.inChannels} → ${st.outChannels}`),
        h('td', {}, st.form),
        h('td', { class: 'num' }, st.warnings ? `⚠ ${st.warnings}` : ''),
      ),
    );
    nodes.push(
      h(
        'table',
        { class: 'grid', 'data-testid': 'stages' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'Stage'),
            h('th', { class: 'num' }, 'Blocks'),
            h('th', { class: 'num' }, 'Channels'),
            h('th', {}, 'Form'),
            h('th', { class: 'num' }, 'Warnings'),
          ),
        ),
        h('tbody', {}, ...rows),
      ),
    );
  }
  if (s.warnings.length) {
    nodes.push(h('h2', {}, 'Warnings'), h('ul', { class: 'warnings', 'data-testid': 'warnings' }, ...s.warnings.map((w) => h('li', {}, w))));
  }
  return nodes;
}

/** The model editor's overview of one file. */
export function renderOverview(root: HTMLElement, overview: FileOverview, send: (m: WebviewMessage) => void): void {
  const header = h('header', { class: 'title' }, h('h1', {}, fileName(overview.fileName)), badge(overview.kindLabel));
  const facts = h(
    'dl',
    { class: 'facts' },
    h('dt', {}, 'Format'),
    h('dd', { 'data-testid': 'format' }, overview.kindLabel),
    h('dt', {}, 'Size'),
    h('dd', {}, `${formatBytes(overview.sizeBytes)} (${count(overview.sizeBytes)} bytes)`),
  );
  const children: Node[] = [header, facts];
  if (overview.kind === 'text') {
    children.push(
      h('p', { class: 'notice', 'data-testid': 'notice' }, 'This is a text file (for example a Python path configuration .pth), not a model.'),
      button('Reopen as Text', () => send({ type: 'reopenAsText' })),
    );
  } else if (overview.kind === 'unknown') {
    children.push(
      h('p', { class: 'notice error', 'data-testid': 'notice' }, 'Not a model file: the first bytes match no PyTorch, ONNX or safetensors layout.'),
    );
  }
  if (overview.readError) children.push(h('p', { class: 'notice error', 'data-testid': 'notice' }, overview.readError));
  if (overview.structure) {
    const s = overview.structure;
    const actions = h('div', { class: 'actions', 'data-testid': 'editor-actions' });
    if (s.form === 'train' || s.form === 'mixed') actions.append(button('Convert to Deploy', () => send({ type: 'runAction', action: 'convertToDeploy' })));
    if (s.stages.length > 0) {
      if (s.form !== 'deploy') actions.append(button('Check Parity', () => send({ type: 'runAction', action: 'checkParity' }), 'secondary'));
      actions.append(button('Show Structure', () => send({ type: 'runAction', action: 'showStructure' }), 'secondary'));
      actions.append(
        button('Open Report', () => send({ type: 'runAction', action: 'openReport' }), 'secondary', {
          title: 'The latest report about this file as it is now; a parity check makes one if there is none',
        }),
      );
    }
    children.push(actions, ...structureSection(s, send));
  }
  root.replaceChildren(h('section', { 'data-testid': 'replens-editor', class: 'editor' }, ...children));
}

export function renderError(root: HTMLElement, message: string): void {
  root.replaceChildren(h('section', { 'data-testid': 'replens-editor', class: 'editor' }, h('p', { class: 'notice error', 'data-testid': 'notice' }, message)));
}
