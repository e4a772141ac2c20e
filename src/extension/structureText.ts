/**
 * The words of the RepLens Structure view: each row's label, description and Markdown tooltip.
 * No `vscode` here, so the unit tests read them from plain structures; structureTree.ts puts them
 * into TreeItems with their icons.
 *
 * A description is cut off at the right in a narrow side bar, so each starts with what matters
 * most: a block's branch marks before its channels, a stage's warnings before its size.
 */
import { blockDescription, branchLabel, postBnLabel, sourceNote, strideSourceNote, strideText } from '../core/model/describe';
import { formatCompact } from '../shared/format';
import { familyById } from '../core/model/families';
import type { Block, BnNames, Branch, BranchRole, ModelStructure, Stage } from '../core/model/structure';

export interface RowText {
  label: string;
  description: string;
  /** Markdown (theme icons allowed). */
  tooltip: string;
}

/** present: tensors or a module in the file; inferred: put there by the family's rule; absent; fused: the deploy conv. */
export type BranchState = 'present' | 'inferred' | 'absent' | 'fused';

export interface BranchRowText extends RowText {
  state: BranchState;
}

/** Text for Markdown: the characters that start emphasis, code, links, HTML, tables or theme icons taken literally. */
export function md(text: string): string {
  return text.replace(/[\\`*_[\]<>|~$]/g, '\\$&');
}

/** A name (module, tensor) as inline code. */
function code(name: string): string {
  return `\`${name.replace(/`/g, "'")}\``;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

const ROLE_ORDER: readonly BranchRole[] = ['dense', 'oneByOne', 'identity', 'avgPool'];

/** The roles a block's tree shows: its family's usual three, and AvgPool where the block has it or says why not. */
export function rolesShown(block: Block): BranchRole[] {
  const avgPool =
    block.branches.some((b) => b.role === 'avgPool') ||
    (block.absent ?? []).some((a) => a.role === 'avgPool') ||
    familyById(block.family).avgPool !== undefined;
  return ROLE_ORDER.filter((role) => role !== 'avgPool' || avgPool);
}

export function modelRow(s: ModelStructure, fileName: string): RowText {
  const warnings = s.warnings.length ? [plural(s.warnings.length, 'warning')] : [];
  const blocks = s.stages.reduce((n, st) => n + st.blocks.length, 0);
  return {
    label: fileName,
    // The form first: it says whether the file still needs converting.
    description: [...warnings, s.form, s.architecture, s.family].join(' · '),
    tooltip:
      `**${md(fileName)}**\n\nformat ${code(s.format)}, family ${code(s.family)}, architecture **${md(s.architecture)}**, form **${s.form}**\n\n` +
      `${plural(s.stages.length, 'stage')}, ${plural(blocks, 'block')}; parameters ${formatCompact(s.params.total)} → ${formatCompact(s.params.afterFusion)} after fusion` +
      (s.warnings.length ? `\n\n$(warning) ${plural(s.warnings.length, 'warning')}` : ''),
  };
}

export function stageRow(stage: Stage): RowText {
  const warned = stage.blocks.filter((b) => b.warnings.length);
  const first = stage.blocks[0];
  const last = stage.blocks[stage.blocks.length - 1];
  const channels = first && last ? [`${first.inChannels}→${last.outChannels}`] : [];
  const shown = stage.blocks.slice(0, 20).map((b) => `${code(b.name)} ${md(blockDescription(b))}${b.warnings.length ? ' $(warning)' : ''}`);
  if (stage.blocks.length > shown.length) shown.push(`… ${stage.blocks.length - shown.length} more`);
  return {
    label: stage.name,
    description: [...(warned.length ? [`${plural(warned.length, 'block')} with warnings`] : []), plural(stage.blocks.length, 'block'), ...channels].join(' · '),
    tooltip: [`**${md(stage.name)}** — ${plural(stage.blocks.length, 'block')}${channels.length ? `, channels ${channels[0]}` : ''}`, ...shown].join('\n\n'),
  };
}

export function blockRow(block: Block): RowText {
  const branches =
    block.form === 'deploy'
      ? `fused: one ${block.kernel}×${block.kernel} conv with bias`
      : rolesShown(block)
          .map((role) => {
            const present = block.branches.filter((b) => b.role === role);
            if (present.length === 0) return `${branchName(block, role)} – (${absenceReason(block, role).text})`;
            return `${present.length > 1 ? `${present.length} × ` : ''}${branchLabel(present[0])} ${present.some((b) => b.presence === 'inferred') ? '✓?' : '✓'}`;
          })
          .join(', ');
  const lines = [
    `**${md(block.name)}** — ${block.form} form (${md(block.family)})`,
    `branches: ${md(branches)}`,
    `channels ${block.inChannels} → ${block.outChannels}, kernel ${block.kernel}×${block.kernel}, groups ${block.groups} (${md(sourceNote(block.groupsSource))})`,
    `stride ${block.stride ?? '?'} (${md(strideSourceNote(block))}), padding ${block.padding}, dilation ${block.dilation}`,
    `parameters ${formatCompact(block.params.train)} → ${formatCompact(block.params.deploy)} after fusion`,
    ...block.warnings.map((w) => `$(warning) ${md(w)}`),
  ];
  return { label: block.name, description: blockDescription(block), tooltip: lines.join('\n\n') };
}

/** A branch's name when the block has none of it, from its family's layout. */
function branchName(block: Block, role: BranchRole): string {
  const family = familyById(block.family);
  const k = `${block.kernel}×${block.kernel}`;
  switch (role) {
    case 'dense':
      return `${k} conv + BN`;
    case 'oneByOne':
      return family.oneByOne.bn === undefined ? '1×1 conv (no BN)' : '1×1 conv + BN';
    case 'identity':
      return family.identityWithoutBn ? 'identity (no BN)' : 'identity (BN)';
    case 'avgPool':
      return 'AvgPool';
  }
}

/**
 * Why the block has no branch of `role`. `text` is the fact of this block when its shape says it (`in 48 ≠ out 96`,
 * `stride 2?`), else the reason the structure gives (a pickled module's None, an assumed class), else what the file lacks;
 * `recorded` is the reason the structure gives, when `text` is another.
 */
export function absenceReason(block: Block, role: BranchRole): { text: string; recorded?: string } {
  const recorded = block.absent?.find((a) => a.role === role)?.reason;
  let shape: string | undefined;
  if (role === 'identity' || role === 'avgPool') {
    if (block.inChannels !== block.outChannels) shape = `in ${block.inChannels} ≠ out ${block.outChannels}`;
    else if (block.stride !== null && block.stride !== 1) shape = `stride ${strideText(block).slice(1)}`;
  }
  if (shape) return recorded ? { text: shape, recorded } : { text: shape };
  if (recorded) return { text: recorded };
  return { text: role === 'avgPool' ? 'the block has none' : 'no tensors for it in the file' };
}

/** What the branch is and how fusion takes it: the rule the tooltip states. */
function branchRule(block: Block, role: BranchRole, branch: Branch | undefined, count: number): string {
  const k = `${block.kernel}×${block.kernel}`;
  const family = familyById(block.family);
  switch (role) {
    case 'dense': {
      const many = count > 1 ? ` The block has ${count} of them; fusion adds them up.` : '';
      return branch?.withoutBn
        ? `The main branch: a ${k} conv without BN (an exporter folded it into the conv's weight and bias), summed as it is.${many}`
        : `The main branch: a ${k} conv and its BN. Fusion folds the BN into the conv's weight and bias.${many}`;
    }
    case 'oneByOne': {
      const bare = branch ? branch.withoutBn : family.oneByOne.bn === undefined;
      return `A 1×1 conv${bare ? ' without BN' : ' and its BN'}. Fusion ${bare ? '' : 'folds the BN, '}pads the 1×1 weight to ${k} (at the centre) and adds it.`;
    }
    case 'identity': {
      const bare = branch ? branch.withoutBn : family.identityWithoutBn;
      return (
        `The block's input added to the other branches${bare ? ' unchanged (no BN)' : ' through a BN'}. Fusion adds a ${k} kernel with 1 at the centre ` +
        `for each channel's own input${bare ? '' : ', scaled by the BN'}. A block has it only where in == out and stride 1, so that input and output have the same shape.`
      );
    }
    case 'avgPool': {
      const p = branch?.poolKernel ?? block.kernel;
      return (
        `A ${p}×${p} AvgPool (the block's stride, padding ${Math.floor(p / 2)}, zero padding counted). Fusion adds a kernel of 1/${p * p} on each channel's own input. ` +
        'A block has it only where in == out and stride 1 (QARepVGGBlockV2).'
      );
    }
  }
}

function bnText(bn: BnNames): string {
  return `BN ${code(bn.weight.replace(/\.weight$/, ''))}, eps ${bn.eps} (${bn.epsSource === 'attribute' ? 'stored in the file' : 'family default'})`;
}

/** How the branch's presence is known. */
function presenceText(block: Block, branch: Branch): string {
  switch (branch.presence) {
    case 'module':
      return `present: the pickled module has ${code(branch.module)}`;
    case 'inferred':
      return (
        `inferred: a state dict cannot show a branch without tensors; the family puts it where in == out at stride 1 ` +
        `(this block: ${block.inChannels}→${block.outChannels}, ${md(strideText(block))})`
      );
    default:
      return 'present: its tensors are in the file';
  }
}

/** The row of the `index`-th branch of `role` ('deploy': the fused conv of a deploy block). */
export function branchRow(block: Block, role: BranchRole | 'deploy', index: number): BranchRowText {
  if (role === 'deploy') {
    const shape = `[${block.deploy?.weightShape.join(', ')}]`;
    return {
      label: `fused ${block.kernel}×${block.kernel} conv + bias`,
      description: shape,
      state: 'fused',
      tooltip: [
        `**fused ${block.kernel}×${block.kernel} conv + bias** — deploy form`,
        'One conv with bias in place of the train branches: their sum, each BN folded in.',
        ...(block.deploy ? [`${code(block.deploy.weight)} ${shape}`] : []),
      ].join('\n\n'),
    };
  }
  const all = block.branches.filter((b) => b.role === role);
  const branch = all[index];
  if (!branch) {
    const label = branchName(block, role);
    const { text, recorded } = absenceReason(block, role);
    return {
      label,
      description: `absent: ${text}`,
      state: 'absent',
      tooltip: [
        `**${md(label)}**: absent — ${md(text)}`,
        ...(recorded ? [`as read: ${md(recorded)}`] : []),
        ...(role === 'identity' || role === 'avgPool'
          ? [`this block: ${block.inChannels}→${block.outChannels}, stride ${block.stride ?? '?'} (${md(strideSourceNote(block))})`]
          : []),
        branchRule(block, role, undefined, 0),
      ].join('\n\n'),
    };
  }
  const presence =
    branch.presence === 'inferred'
      ? 'inferred: a state dict cannot show it; in == out at stride 1'
      : branch.presence === 'module'
        ? 'in the pickled module'
        : undefined;
  const bn = branch.bn
    ? bnText(branch.bn)
    : branch.withoutBn
      ? role === 'identity' || role === 'avgPool'
        ? 'no BN: no tensors'
        : branch.convBias
          ? 'no BN: its bias holds what the BN did'
          : 'no BN: the conv is summed as it is'
      : 'no BN';
  const label = branchLabel(branch);
  return {
    label,
    description: branch.weightShape
      ? `[${branch.weightShape.join(', ')}]`
      : branch.bn
        ? `BN ${block.inChannels}`
        : (presence ?? `${block.inChannels} channels`),
    state: branch.presence === 'inferred' ? 'inferred' : 'present',
    tooltip: [
      `**${md(label)}**: ${branch.presence === 'inferred' ? 'inferred' : 'present'}${all.length > 1 ? ` (${index + 1} of ${all.length})` : ''}`,
      ...(branch.bn && !branch.weightShape && branch.bn.weight === `${branch.module}.weight`
        ? []
        : [`${code(branch.module)}${branch.weightShape ? ` [${branch.weightShape.join(', ')}]` : ''}`]),
      bn,
      presenceText(block, branch),
      branchRule(block, role, branch, all.length),
    ].join('\n\n'),
  };
}

export function postBnRow(block: Block): RowText {
  const bn = block.postBn!;
  return {
    label: 'BN after the sum',
    description: `BN ${block.outChannels} · ${block.form === 'deploy' ? 'kept' : 'folded last'}`,
    tooltip: ['**BN after the sum**', md(postBnLabel(block) ?? ''), bnText(bn)].join('\n\n'),
  };
}
