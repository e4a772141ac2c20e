import { formatCompact } from '../../shared/format';
import { familyById } from './families';
import type { Block, Branch, ModelStructure, ValueSource } from './structure';

/** Words for where an inferred value came from; 'attribute' values are facts and get no note. */
export function sourceNote(source: ValueSource): string {
  switch (source) {
    case 'attribute':
      return 'stored in the file';
    case 'identity-rule':
      return 'inferred: an identity branch means stride 1';
    case 'stage-convention':
      return "inferred: stride 2 at each stage's first block (the family's convention)";
    case 'identity-bn':
      return 'inferred from the identity BatchNorm size';
    case 'chain':
      return "inferred from the previous block's output channels";
    case 'default':
      return 'default';
    case 'unknown':
      return 'unknown: the file does not store it';
  }
}

function isInferred(source: ValueSource): boolean {
  return source !== 'attribute' && source !== 'default';
}

/** Where the block's stride came from, in words; the stage convention names the stride it gave (2 at a stage's first block, else 1). */
export function strideSourceNote(block: Block): string {
  if (block.strideSource === 'stage-convention' && block.stride === 1) return "inferred: stride 1 after each stage's first block (the family's convention)";
  return sourceNote(block.strideSource);
}

/** Short stride text; a trailing '?' marks an inferred value so a guess never reads as fact. */
export function strideText(block: Block): string {
  if (block.stride === null) return 's?';
  return `s${block.stride}${isInferred(block.strideSource) ? '?' : ''}`;
}

function branchMark(block: Block, role: Branch['role']): string {
  const branches = block.branches.filter((b) => b.role === role);
  if (branches.length === 0) return '–';
  // '?' marks a branch a state dict cannot show, put there by the family's rule (as for strides).
  return `✓${branches.length > 1 ? `×${branches.length}` : ''}${branches.some((b) => b.presence === 'inferred') ? '?' : ''}`;
}

/** Whether the block has, or its family could have, an AvgPool branch (QARepVGGBlockV2; or v1, whose absence says why). */
function showsAvgPool(block: Block): boolean {
  return block.branches.some((b) => b.role === 'avgPool') || (block.absent ?? []).some((a) => a.role === 'avgPool');
}

/** The present conv and identity branches that are summed without a BN (an AvgPool never has one), as `1×1, id`. */
function withoutBnText(block: Block): string | undefined {
  const words: [Branch['role'], string][] = [
    ['dense', `${block.kernel}×${block.kernel}`],
    ['oneByOne', '1×1'],
    ['identity', 'id'],
  ];
  const bare = words.filter(([role]) => {
    const branches = block.branches.filter((b) => b.role === role);
    return branches.length > 0 && branches.every((b) => b.withoutBn);
  });
  return bare.length ? `${bare.map(([, word]) => word).join(', ')} without BN` : undefined;
}

/**
 * One-line summary used by the tree view and the CLI, the branches first (in a narrow side bar the
 * end of the line is what is cut off): `3×3 ✓ 1×1 ✓ id – · 48→96 s2?`. Groups are shown when not 1
 * (`g4`); an AvgPool branch where the family has one (`avg ✓?`); then the branches summed without BN
 * (`1×1, id without BN`), SE, and a BatchNorm after the sum. A deploy block: `fused 3×3 · 48→96 s2?`.
 */
export function blockDescription(block: Block): string {
  const k = `${block.kernel}×${block.kernel}`;
  const shape = `${block.inChannels}→${block.outChannels} ${strideText(block)}${block.groups !== 1 ? ` g${block.groups}` : ''}`;
  const tail = [block.se ? 'SE' : undefined, block.postBn ? 'BN after sum' : undefined];
  if (block.form === 'deploy') return [`fused ${k}`, shape, ...tail].filter(Boolean).join(' · ');
  const avg = showsAvgPool(block) ? ` avg ${branchMark(block, 'avgPool')}` : '';
  const marks = `${k} ${branchMark(block, 'dense')} 1×1 ${branchMark(block, 'oneByOne')} id ${branchMark(block, 'identity')}${avg}`;
  return [marks, shape, withoutBnText(block), ...tail].filter(Boolean).join(' · ');
}

export function branchLabel(branch: Branch): string {
  // Without BN: the exporter folded it into the conv's bias, or the conv or input is summed as it is.
  const bare = (conv: string) => (branch.convBias ? `${conv} + bias` : `${conv} (no BN)`);
  const inferred = branch.presence === 'inferred' ? ', inferred' : '';
  switch (branch.role) {
    case 'dense':
      return branch.withoutBn
        ? bare(`${branch.weightShape?.[2]}×${branch.weightShape?.[3]} conv`)
        : `${branch.weightShape?.[2]}×${branch.weightShape?.[3]} conv + BN`;
    case 'oneByOne':
      return branch.withoutBn ? bare('1×1 conv') : '1×1 conv + BN';
    case 'identity':
      return branch.withoutBn ? `identity (no BN${inferred})` : 'identity (BN)';
    case 'avgPool':
      return `${branch.poolKernel ?? '?'}×${branch.poolKernel ?? '?'} AvgPool (zero padding counted${inferred})`;
  }
}

/** The BatchNorm after the sum of the branches (QARepVGG's `bn`) in words, or undefined when the block has none. */
export function postBnLabel(block: Block): string | undefined {
  if (!block.postBn) return undefined;
  if (block.form === 'deploy') return "BN after the conv, kept as the family's deploy module keeps it";
  const family = familyById(block.family);
  const kept = family.postBn?.keptInDeploy ? `; a deploy checkpoint keeps it beside ${family.deploy}, as the family's own deploy module does` : '';
  return `BN after the sum: folded into the one fused conv${kept}`;
}

const ROLE_WORDS: Record<Branch['role'], string> = { dense: 'k×k', oneByOne: '1×1', identity: 'id', avgPool: 'avg' };

/** `blocks.0, blocks.1, blocks.2, … (5 blocks)`: the first few of the blocks a note is about. */
function someBlocks(blocks: readonly string[]): string {
  return blocks.length <= 3 ? blocks.join(', ') : `${blocks.slice(0, 3).join(', ')}, … (${blocks.length} blocks)`;
}

/** Groups `[mark, reason, block]` triples by mark and reason, in first-seen order: `  note: mark (blocks): reason`. */
function notesOf(entries: readonly [mark: string, reason: string, block: string][]): string[] {
  const groups = new Map<string, { mark: string; reason: string; blocks: string[] }>();
  for (const [mark, reason, block] of entries) {
    const key = `${mark}\u0000${reason}`;
    const group = groups.get(key);
    if (group) group.blocks.push(block);
    else groups.set(key, { mark, reason, blocks: [block] });
  }
  return [...groups.values()].map((g) => `  note: ${g.mark} (${someBlocks(g.blocks)}): ${g.reason}`);
}

/**
 * What the one-line descriptions cannot say, once per reason: why a tensorless branch is absent
 * ('avg –'), and that a '✓?' branch was inferred. Only blocks that have such branches get any.
 */
function branchNotes(s: ModelStructure): string[] {
  const entries: [string, string, string][] = [];
  for (const block of s.stages.flatMap((st) => st.blocks)) {
    for (const a of block.absent ?? []) entries.push([`${ROLE_WORDS[a.role]} –`, a.reason, block.name]);
    for (const role of new Set(block.branches.filter((b) => b.presence === 'inferred').map((b) => b.role))) {
      entries.push([
        `${ROLE_WORDS[role]} ✓?`,
        'inferred, as a state dict cannot show a branch without tensors: the family puts it where in == out at stride 1',
        block.name,
      ]);
    }
  }
  return notesOf(entries);
}

/** Where each '?' stride came from (`s2?`: the stage convention, `s1?`: the identity rule, `s?`: unknown), once per source. */
function strideNotes(s: ModelStructure): string[] {
  return notesOf(
    s.stages
      .flatMap((st) => st.blocks)
      .filter((b) => strideText(b).endsWith('?'))
      .map((b): [string, string, string] => [strideText(b), strideSourceNote(b), b.name]),
  );
}

/** Whether the tree `structureText` prints has a '?' in it: a stride or a branch RepLens inferred, or a stride it does not know. */
function hasInferred(s: ModelStructure): boolean {
  return s.stages.some((st) => st.blocks.some((b) => strideText(b).endsWith('?') || b.branches.some((x) => x.presence === 'inferred')));
}

/** The legend of '?', printed after the tree when a value in it is inferred or unknown; the notes after it say how. */
export const INFERRED_LEGEND =
  '  ? = not stored in the file: inferred as the notes below say, or unknown (s?); --json gives where each value comes from (strideSource, groupsSource, presence)';

/** The indented tree `replens inspect` prints. */
export function structureText(s: ModelStructure, fileName: string, fileWarnings: readonly string[] = []): string {
  const lines = [
    `${fileName}: ${s.format}, family ${s.family}, architecture ${s.architecture}, form ${s.form}`,
    `parameters ${formatCompact(s.params.total)} → ${formatCompact(s.params.afterFusion)} after fusion`,
  ];
  for (const stage of s.stages) {
    lines.push(`  ${stage.name} (${stage.blocks.length} block${stage.blocks.length === 1 ? '' : 's'})`);
    for (const block of stage.blocks) {
      lines.push(`    ${block.name}  ${blockDescription(block)}${block.warnings.length ? '  ⚠' : ''}`);
    }
  }
  if (s.other.length) lines.push(`  other tensors: ${s.other.length}`);
  if (hasInferred(s)) lines.push(INFERRED_LEGEND, ...strideNotes(s));
  lines.push(...branchNotes(s));
  for (const w of fileWarnings) lines.push(`warning: ${w}`);
  for (const w of s.warnings) lines.push(`warning: ${w.block ? `${w.block}: ` : ''}${w.message}`);
  if (s.stages.length === 0) lines.push('  no re-parameterizable blocks found');
  return lines.join('\n');
}

/**
 * Per-branch detail for blocks with branches that have no BN or no tensors, or a BN after the sum
 * (QARepVGG): each branch's kind, module and how its presence is known, the absent branches with the
 * reason, and the post-sum BN. Other blocks get none, so their JSON is as it always was.
 */
function branchDetail(b: Block): Record<string, unknown> {
  const special = b.postBn !== undefined || b.absent !== undefined || b.branches.some((x) => x.role === 'avgPool' || x.presence !== undefined);
  if (!special) return {};
  return {
    branchList: b.branches.map((x) => ({
      role: x.role,
      module: x.module,
      label: branchLabel(x),
      bn: !x.withoutBn,
      ...(x.presence ? { presence: x.presence } : {}),
      ...(x.poolKernel !== undefined ? { poolKernel: x.poolKernel } : {}),
    })),
    absentBranches: b.absent ?? [],
    ...(b.postBn ? { postBnModule: b.postBn.weight.replace(/\.weight$/, '') } : {}),
  };
}

/** The JSON `replens inspect --json` prints (a stable public shape). */
export function structureJson(s: ModelStructure, fileWarnings: readonly string[] = []): unknown {
  return {
    format: s.format,
    family: s.family,
    architecture: s.architecture,
    form: s.form,
    params: s.params,
    stages: s.stages.map((stage) => ({
      name: stage.name,
      blocks: stage.blocks.map((b) => ({
        name: b.name,
        inChannels: b.inChannels,
        outChannels: b.outChannels,
        kernel: b.kernel,
        stride: b.stride,
        strideSource: b.strideSource,
        groups: b.groups,
        groupsSource: b.groupsSource,
        padding: b.padding,
        dilation: b.dilation,
        branches: {
          dense: b.branches.some((x) => x.role === 'dense'),
          oneByOne: b.branches.some((x) => x.role === 'oneByOne'),
          identity: b.branches.some((x) => x.role === 'identity'),
          avgPool: b.branches.some((x) => x.role === 'avgPool'),
        },
        denseBranches: b.branches.filter((x) => x.role === 'dense').length,
        postBn: b.postBn !== undefined,
        ...branchDetail(b),
        se: b.se !== undefined,
        form: b.form,
        params: b.params,
      })),
    })),
    otherTensors: s.other.length,
    warnings: [...fileWarnings.map((message) => ({ message })), ...s.warnings],
  };
}
