import type { Block, Branch, ModelStructure, ValueSource } from './structure';

/** Words for where an inferred value came from; 'attribute' values are facts and get no note. */
export function sourceNote(source: ValueSource): string {
  switch (source) {
    case 'attribute': return 'stored in the file';
    case 'identity-rule': return 'inferred: an identity branch means stride 1';
    case 'stage-convention': return "inferred: stride 2 at each stage's first block (the family's convention)";
    case 'identity-bn': return 'inferred from the identity BatchNorm size';
    case 'chain': return "inferred from the previous block's output channels";
    case 'default': return 'default';
    case 'unknown': return 'unknown: the file does not store it';
  }
}

function isInferred(source: ValueSource): boolean {
  return source !== 'attribute' && source !== 'default';
}

/** Short stride text; a trailing '?' marks an inferred value so a guess never reads as fact. */
export function strideText(block: Block): string {
  if (block.stride === null) return 's?';
  return `s${block.stride}${isInferred(block.strideSource) ? '?' : ''}`;
}

function branchMark(block: Block, role: Branch['role']): string {
  const n = block.branches.filter((b) => b.role === role).length;
  if (n === 0) return '–';
  return n > 1 ? `✓×${n}` : '✓';
}

/** One-line summary used by the tree view and the CLI: `48→96 · s2 · g1 · 3×3 ✓ 1×1 ✓ id –`. */
export function blockDescription(block: Block): string {
  const head = `${block.inChannels}→${block.outChannels} · ${strideText(block)} · g${block.groups}`;
  if (block.form === 'deploy') return `${head} · fused ${block.kernel}×${block.kernel}${block.se ? ' · SE' : ''}`;
  const k = `${block.kernel}×${block.kernel}`;
  return `${head} · ${k} ${branchMark(block, 'dense')} 1×1 ${branchMark(block, 'oneByOne')} id ${branchMark(block, 'identity')}${block.se ? ' · SE' : ''}`;
}

export function branchLabel(branch: Branch): string {
  // Without BN: the exporter folded it into the conv's bias, or the input is added unchanged.
  const bn = branch.withoutBn ? '' : ' + BN';
  switch (branch.role) {
    case 'dense': return `${branch.weightShape?.[2]}×${branch.weightShape?.[3]} conv${branch.withoutBn ? ' + bias' : bn}`;
    case 'oneByOne': return `1×1 conv${branch.withoutBn ? ' + bias' : bn}`;
    case 'identity': return branch.withoutBn ? 'identity' : 'identity (BN)';
  }
}

export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** The indented tree `replens inspect` prints. */
export function structureText(s: ModelStructure, fileName: string, fileWarnings: readonly string[] = []): string {
  const lines = [
    `${fileName}: ${s.format}, family ${s.family}, architecture ${s.architecture}, form ${s.form}`,
    `parameters ${formatCount(s.params.total)} → ${formatCount(s.params.afterFusion)} after fusion`,
  ];
  for (const stage of s.stages) {
    lines.push(`  ${stage.name} (${stage.blocks.length} block${stage.blocks.length === 1 ? '' : 's'})`);
    for (const block of stage.blocks) {
      lines.push(`    ${block.name}  ${blockDescription(block)}${block.warnings.length ? '  ⚠' : ''}`);
    }
  }
  if (s.other.length) lines.push(`  other tensors: ${s.other.length}`);
  for (const w of fileWarnings) lines.push(`warning: ${w}`);
  for (const w of s.warnings) lines.push(`warning: ${w.block ? `${w.block}: ` : ''}${w.message}`);
  if (s.stages.length === 0) lines.push('  no re-parameterizable blocks found');
  return lines.join('\n');
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
        },
        denseBranches: b.branches.filter((x) => x.role === 'dense').length,
        se: b.se !== undefined,
        form: b.form,
        params: b.params,
      })),
    })),
    otherTensors: s.other.length,
    warnings: [...fileWarnings.map((message) => ({ message })), ...s.warnings],
  };
}
