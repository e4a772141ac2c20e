import type { FamilyLayout } from './families';
import { convFacts, convGeometry } from './onnxBranches';
import { bnNames, inFileOrder, sumParams, trainBlock, type OnnxBlock } from './onnxBlock';
import type { GraphIndex } from './onnxGraph';
import { explainSum, extendAfterSum, singleBranchMatch, type Match } from './onnxMatch';
import { claim, FAMILY_SOURCES, modulePath, numbered, prefixOf, type FamilySource, type Naming } from './onnxNaming';
import type { Branch } from './structure';

/*
 * What the shape alone does not show, found by a family's names on convs and BNs outside every
 * block found by shape:
 * - a block of one branch: MobileOne's pointwise block without skip is one conv and BN, which
 *   torch exports as a lone Conv (its `0 + conv(x)` leaves no node);
 * - nodes named like a block's branches that do not form one: a block that is there but left
 *   unfused, reported with the reason instead of passed over in silence.
 */

interface Member {
  node: number;
  kind: 'dense' | 'oneByOne' | 'identity';
  path: string;
  source: FamilySource;
}

interface Group {
  family: FamilyLayout;
  prefix: string;
  members: Member[];
}

/** Where `node`'s name puts it in a family's block, by the first family and name source that place it. */
function placeOf(ix: GraphIndex, i: number, families: readonly FamilyLayout[]): { family: FamilyLayout; prefix: string; member: Member } | undefined {
  const conv = ix.isConv(i);
  if (!conv && !ix.isBn(i)) return undefined;
  for (const family of families) {
    const markers = conv
      ? ([
          ['dense', family.dense.conv],
          ['oneByOne', family.oneByOne.conv],
        ] as const)
      : ([['identity', family.identity]] as const);
    for (const source of FAMILY_SOURCES) {
      const path = modulePath(ix, i, source);
      if (path === '') continue;
      for (const [kind, marker] of markers) {
        const prefix = prefixOf(marker, path);
        if (prefix !== undefined) return { family, prefix, member: { node: i, kind, path, source } };
      }
    }
  }
  return undefined;
}

/** The node whose output ends `conv`'s branch: its BN and the no-ops after them. */
function branchEnd(ix: GraphIndex, start: number): number {
  const m: Match = { last: start, input: '', terms: [], sums: [], noops: [], aliases: [] };
  const out = ix.node(start).output[0];
  const r = ix.soleReader(out);
  if (ix.isConv(start) && ix.isBn(r) && ix.node(r).input[0] === out) m.last = r;
  extendAfterSum(ix, m, false);
  return m.last;
}

/** Why a branch named like a block's is in no block. */
function whyNot(ix: GraphIndex, member: Member): string {
  const end = branchEnd(ix, member.node);
  const out = ix.node(end).output[0];
  const label = ix.label(member.node);
  const readers = ix.readers(out);
  if (ix.isPinned(out)) return `${label}: its result is a graph output, which a fused conv would hide`;
  if (readers.length > 1) return `${label}: its result is also read by ${readers.map((r) => ix.label(r)).join(', ')}`;
  if (readers.length === 0) return `${label}: nothing reads its result`;
  const r = readers[0];
  if (ix.isSum(r)) return explainSum(ix, r);
  return `${label}: its result goes to ${ix.label(r)} (${ix.node(r).opType}), which is neither a sum, a BatchNormalization nor a no-op`;
}

/** The branches as their names tell them, for a block that is reported but not fused. */
function namedBranches(ix: GraphIndex, members: readonly Member[]): Branch[] {
  return members.map((m): Branch => {
    if (m.kind === 'identity') return { role: 'identity', module: m.path, bn: bnNames(ix, m.node) };
    const f = convFacts(ix, m.node);
    const out = ix.node(m.node).output[0];
    const bn = ix.soleReader(out);
    const branch: Branch = { role: m.kind, module: m.path, convWeight: f.weight.name, convBias: f.bias?.name, weightShape: f.weight.shape };
    if (ix.isBn(bn)) branch.bn = bnNames(ix, bn);
    else branch.withoutBn = true;
    return branch;
  });
}

function reportedBlock(ix: GraphIndex, group: Group, naming: Naming, order: ReadonlyMap<string, number>): OnnxBlock {
  const { family } = group;
  const rank = { dense: 0, oneByOne: 1, identity: 2 };
  const members = [...group.members].sort((a, b) => rank[a.kind] - rank[b.kind]);
  const conv = members.find((m) => m.kind === 'dense') ?? members.find((m) => m.kind === 'oneByOne')!;
  const f = convFacts(ix, conv.node);
  const [outChannels, inPerGroup, k] = f.weight.shape;
  const branches = namedBranches(ix, members);
  const nodes = [...new Set(members.flatMap((m) => [m.node, branchEnd(ix, m.node)]))].sort((a, b) => a - b);
  const reasons = [...new Set(members.filter((m) => m.kind !== 'identity').map((m) => whyNot(ix, m)))];
  const train = sumParams(
    ix,
    branches.flatMap((b) => [b.convWeight, b.convBias, b.bn?.weight, b.bn?.bias]),
  );
  return {
    name: claim(naming, group.prefix) ?? numbered(naming),
    family: family.id,
    ...convGeometry(f, inPerGroup, outChannels, k),
    branches,
    form: 'train',
    // Left as it is, so fusion saves nothing here.
    params: { train, deploy: train },
    tensors: inFileOrder(
      order,
      branches.flatMap((b) => [b.convWeight, b.convBias, b.bn?.weight, b.bn?.bias, b.bn?.mean, b.bn?.var]),
    ),
    warnings: [`named like a ${family.label} block, but its nodes do not form one that RepLens can fuse: ${reasons.join('; ')}`],
    onnx: {
      input: ix.node(conv.node).input[0],
      output: ix.node(nodes[nodes.length - 1]).output[0],
      nodes,
      nodeNames: nodes.map((i) => ix.node(i).name ?? ''),
      familySource: conv.source,
      fusible: false,
    },
  };
}

/** Blocks found by names among the nodes of no other block, each with the index of its last node. */
export function namedBlocks(
  ix: GraphIndex,
  naming: Naming,
  order: ReadonlyMap<string, number>,
  taken: ReadonlySet<number>,
): { at: number; block: OnnxBlock }[] {
  const groups = new Map<string, Group>();
  ix.graph.node.forEach((_, i) => {
    if (taken.has(i)) return;
    const place = placeOf(ix, i, naming.families);
    if (!place) return;
    const key = `${place.family.id}\u0000${place.prefix}`;
    const group = groups.get(key) ?? { family: place.family, prefix: place.prefix, members: [] };
    group.members.push(place.member);
    groups.set(key, group);
  });
  const found: { at: number; block: OnnxBlock }[] = [];
  for (const group of groups.values()) {
    // A BN named like an identity branch is no block without a conv beside it.
    if (!group.members.some((m) => m.kind !== 'identity')) continue;
    const [only] = group.members;
    const single = group.members.length === 1 && only.kind === 'dense' && !naming.used.has(group.prefix) ? singleBranchMatch(ix, only.node) : undefined;
    if (single) {
      const name = claim(naming, group.prefix)!;
      found.push({ at: single.last, block: trainBlock(ix, single, naming, order, { family: group.family, name, source: only.source }) });
    } else {
      const block = reportedBlock(ix, group, naming, order);
      found.push({ at: Math.max(...block.onnx!.nodes), block });
    }
  }
  return found;
}
