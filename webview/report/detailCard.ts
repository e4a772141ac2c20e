/** The card describing the selected block: its shape, branches, costs, fused kernel and errors. */
import type { BlockReport } from '../../src/shared/reportData';
import { ERROR_LEVELS, type ErrorLevel } from '../reportModel/errorScale';
import { formatChange, formatCosine, formatCount, formatError, formatStride, formatTimes } from '../reportModel/format';
import { OUTLIER_THRESHOLD, sparkline } from '../reportModel/quantization';
import { h } from '../dom';
import { badge } from '../toolkit';
import { sparklineSvg } from './charts';

function fact(term: string, ...value: (Node | string)[]): Node[] {
  return [h('dt', {}, term), h('dd', {}, ...value)];
}

export interface DetailInput {
  block: BlockReport | undefined;
  name: string;
  level: ErrorLevel;
  rtol: number;
  /** Nodes of the block in the train-form and deploy-form graphs. */
  nodesBefore: number;
  nodesAfter: number;
}

export function detailCard(d: DetailInput | null): HTMLElement {
  const card = h('aside', { class: 'rl-detail', 'data-testid': 'detail-card', 'aria-live': 'polite' });
  if (!d) {
    card.append(
      h('p', { class: 'rl-muted' }, 'Select a block in either graph (click, or Tab to a node and press Enter) to compare it before and after fusion.'),
    );
    return card;
  }
  const b = d.block;
  const verdict = b?.parity ? (b.parity.pass ? 'PASS' : 'FAIL') : 'no parity';
  card.append(
    h(
      'header',
      { class: 'rl-detail-head' },
      h('h3', { title: d.name }, d.name),
      badge(verdict, { class: `rl-badge-${b?.parity ? (b.parity.pass ? 'pass' : 'fail') : 'none'}` }),
    ),
  );
  if (!b) {
    card.append(h('p', { class: 'rl-muted' }, `This block is in the graphs but not in the block list (${d.nodesBefore} nodes before, ${d.nodesAfter} after).`));
    return card;
  }
  const levelLabel = ERROR_LEVELS.find((l) => l.level === d.level)?.label ?? '';
  const facts = h(
    'dl',
    { class: 'facts rl-detail-facts' },
    ...fact('Stage', b.stage),
    ...fact('Shape', `${b.inChannels} → ${b.outChannels} channels, ${b.kernel}×${b.kernel} kernel`),
    ...fact('Stride', formatStride(b.stride, b.strideInferred)),
    ...fact('Groups', String(b.groups)),
    ...fact('Branches', b.branches.length ? h('ul', { class: 'rl-plain-list' }, ...b.branches.map((x) => h('li', {}, x))) : '–'),
    ...fact('Parameters', `${formatCount(b.paramsBefore)} → ${formatCount(b.paramsAfter)} (${formatChange(b.paramsBefore, b.paramsAfter)})`),
    ...fact('Graph nodes', `${d.nodesBefore} → ${d.nodesAfter}`),
  );
  card.append(facts);

  card.append(h('h4', {}, 'Parity'));
  if (b.parity) {
    const p = b.parity;
    card.append(
      h(
        'dl',
        { class: 'facts rl-detail-facts' },
        ...fact('Max abs', formatError(p.maxAbs)),
        ...fact('Max rel', formatError(p.maxRel), h('span', { class: 'rl-muted' }, ` (rtol ${formatError(d.rtol)})`)),
        ...fact('Cosine', formatCosine(p.cosine)),
        ...fact('Scale', h('span', { class: `rl-dot rl-err-${d.level}`, 'aria-hidden': 'true' }), ` ${levelLabel}`),
      ),
    );
  } else card.append(h('p', { class: 'rl-muted' }, 'No per-block numbers: parity did not run for this block.'));

  card.append(h('h4', {}, 'Fused kernel'));
  const k = b.kernelStats;
  if (k) {
    const line = sparkline(k.channelMaxAbs);
    card.append(
      h(
        'dl',
        { class: 'facts rl-detail-facts' },
        ...fact('Max |w|', formatError(k.maxAbs)),
        ...fact('Outlier ratio', formatTimes(k.outlierRatio), k.outlierRatio > OUTLIER_THRESHOLD ? h('span', { class: 'rl-flag' }, ' ⚠ per-channel INT8') : ''),
      ),
      sparklineSvg(line, `Per-output-channel max |w| of ${b.name}'s fused kernel, ${k.channelMaxAbs.length} channels`, 240, 40),
    );
  } else card.append(h('p', { class: 'rl-muted' }, 'No fused kernel statistics.'));

  if (b.warnings.length) card.append(h('h4', {}, 'Warnings'), h('ul', { class: 'warnings' }, ...b.warnings.map((w) => h('li', {}, w))));
  return card;
}
