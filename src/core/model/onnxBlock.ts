import { numelOf } from '../formats/tensor';
import type { FamilyLayout } from './families';
import { convFacts, convGeometry, poolFacts, type ConvFacts, type PoolFacts, type Term } from './onnxBranches';
import { attribute, type GraphIndex } from './onnxGraph';
import { matchNodes, type Match } from './onnxMatch';
import { claim, FAMILY_SOURCES, markerPattern, modulePath, numbered, prefixIn, scopePath, type FamilySource, type Naming } from './onnxNaming';
import { noOp } from './onnxNoops';
import type { Block, BnNames, Branch, BranchRole } from './structure';

/*
 * A Block from what the graph shows: stride, groups, padding and eps read from node attributes
 * (facts), the reasons one conv could not express the branches, and where the block sits.
 */

/** A block before buildStructure places it in a stage. */
export type OnnxBlock = Omit<Block, 'stage'>;

/** BatchNormalization's epsilon when the attribute is absent (the operator's default, so still the graph's own value). */
const ONNX_BN_EPSILON = 1e-5;
const ROLE_ORDER: Readonly<Record<BranchRole, number>> = { dense: 0, oneByOne: 1, identity: 2, avgPool: 3 };

export function bnNames(ix: GraphIndex, i: number): BnNames {
  const node = ix.node(i);
  const [, weight, bias, mean, variance] = node.input;
  return { weight, bias, mean, var: variance, eps: attribute(node, 'epsilon')?.f ?? ONNX_BN_EPSILON, epsSource: 'attribute' };
}

export function sumParams(ix: GraphIndex, names: readonly (string | undefined)[]): number {
  let n = 0;
  for (const name of names) if (name) n += numelOf(ix.initializers.get(name)!.shape, name);
  return n;
}

/** The tensors of `names` in initializer order. */
export function inFileOrder(order: ReadonlyMap<string, number>, names: Iterable<string | undefined>): string[] {
  const unique = [...new Set([...names].filter((n): n is string => n !== undefined && order.has(n)))];
  return unique.sort((a, b) => order.get(a)! - order.get(b)!);
}

interface Facts {
  convs: ConvFacts[];
  pools: PoolFacts[];
  /** The k×k conv whose shape, groups and stride the block takes. */
  ref: ConvFacts;
  k: number;
}

function factsOf(ix: GraphIndex, m: Match): Facts {
  const convs = m.terms.flatMap((t) => (t.kind === 'conv' ? [convFacts(ix, t.conv)] : []));
  const pools = m.terms.flatMap((t) => (t.kind === 'pool' ? [poolFacts(ix, t.pool, t.pad)] : []));
  const k = Math.max(...convs.map((f) => f.kernel[0]));
  return { convs, pools, ref: convs.find((f) => f.kernel[0] === k)!, k };
}

/** Why the branches cannot become one conv, one reason per disagreement. */
function fusionProblems(ix: GraphIndex, m: Match, { convs, pools, ref, k }: Facts): string[] {
  const problems: string[] = [];
  const [out, inPerGroup] = ref.weight.shape;
  const inChannels = inPerGroup * ref.group;
  const stride = ref.strides[0];
  for (const c of convs) {
    const label = ix.label(c.node);
    const [kh, kw] = c.kernel;
    const declared = attribute(ix.node(c.node), 'kernel_shape')?.ints.map(Number);
    if (declared && (declared[0] !== kh || declared[1] !== kw))
      problems.push(`${label}: kernel_shape [${declared.join(', ')}] does not match its weight ${kh}×${kw}`);
    if (kh !== kw || kh % 2 === 0) problems.push(`${label}: kernel ${kh}×${kw} is not square and odd, so it cannot be centred in the block's kernel`);
    if (c.weight.shape[0] !== out || c.weight.shape[1] !== inPerGroup)
      problems.push(`${label}: weight [${c.weight.shape.join(', ')}] does not match ${out}×${inPerGroup}`);
    if (c.group !== ref.group) problems.push(`${label}: group ${c.group}, other branches ${ref.group}`);
    if (c.strides.some((s) => s !== stride)) problems.push(`${label}: strides [${c.strides.join(', ')}] differ from the block's stride ${stride}`);
    if (c.dilations.some((d) => d !== 1)) problems.push(`${label}: dilations [${c.dilations.join(', ')}]; only dilation 1 fuses exactly`);
    if (c.autoPad !== 'NOTSET') problems.push(`${label}: auto_pad ${c.autoPad}; only explicit pads can be checked`);
    else if (c.pads.some((p) => p !== Math.floor(kh / 2)))
      problems.push(`${label}: pads [${c.pads.join(', ')}] do not centre its ${kh}×${kw} kernel (${Math.floor(kh / 2)} on every side is needed)`);
    if (c.bias && c.bias.shape[0] !== out) problems.push(`${label}: bias has ${c.bias.shape[0]} values, expected ${out}`);
  }
  for (const p of pools) {
    const label = ix.label(p.node);
    problems.push(...p.problems);
    if (p.kernel[0] > k) problems.push(`${label}: window ${p.kernel[0]}×${p.kernel[1]} is larger than the block's ${k}×${k} kernel`);
    if (p.strides.some((s) => s !== stride)) problems.push(`${label}: strides [${p.strides.join(', ')}] differ from the block's stride ${stride}`);
    if (inChannels !== out) problems.push(`${label}: an average pool keeps in_channels ${inChannels}, the block has out_channels ${out}`);
  }
  const bns = [
    ...m.terms.flatMap((t) => (t.kind === 'conv' && t.bn !== undefined ? [t.bn] : t.kind === 'bn' ? [t.bn] : [])),
    ...(m.postBn === undefined ? [] : [m.postBn]),
  ];
  for (const b of bns) {
    for (const p of ix.node(b).input.slice(1)) {
      const n = ix.param(p, 1)!.shape[0];
      if (n !== out) problems.push(`${ix.label(b)}: ${p} has ${n} values, expected ${out}`);
    }
  }
  if (m.terms.some((t) => t.kind === 'bn' || t.kind === 'bare')) {
    if (inChannels !== out) problems.push(`identity branch with in_channels ${inChannels} ≠ out_channels ${out}`);
    if (stride !== 1) problems.push(`identity branch next to convs of stride ${stride}`);
  }
  // A per-channel constant of a no-op must not broadcast the tensor it passes to more channels.
  const check = (nodes: readonly number[], channels: number) => {
    for (const i of nodes) {
      const c = noOp(ix, i)?.channels;
      if (c !== undefined && c !== channels)
        problems.push(`${ix.label(i)}: its constant has ${c} channels, the tensor it passes on ${channels}; it is no no-op there`);
    }
  };
  check([...m.noops, ...m.terms.flatMap((t) => t.noops)], out);
  check(m.aliases, inChannels);
  return problems;
}

/** Where `naming`'s families put the branches of `m`: the family, its block path and the source of the names. */
function familyNames(ix: GraphIndex, m: Match, naming: Naming): { family: FamilyLayout; name: string; source: FamilySource } | undefined {
  const named = m.terms.filter((t): t is Extract<Term, { kind: 'conv' | 'bn' }> => t.kind === 'conv' || t.kind === 'bn');
  // Families that share names are told apart by the branches only some of them have: tried best fit first.
  const has = (kind: Term['kind']) => m.terms.some((t) => t.kind === kind);
  const fit = (f: FamilyLayout) =>
    Number(has('pool') === (f.avgPool !== undefined)) +
    Number((m.postBn !== undefined) === (f.postBn !== undefined)) +
    Number(!has('bare') || f.identityWithoutBn === true);
  const families = [...naming.families].sort((a, b) => fit(b) - fit(a));
  for (const source of FAMILY_SOURCES) {
    const candidates = named.map((t) => ({ path: modulePath(ix, t.kind === 'conv' ? t.conv : t.bn, source), conv: t.kind === 'conv' }));
    if (candidates.length === 0 || candidates.some((c) => c.path === '')) continue;
    for (const family of families) {
      const name = claim(naming, prefixIn(family, candidates));
      if (name !== undefined) return { family, name, source };
    }
  }
  return undefined;
}

/** Family, name and source already known (a block found by its names). */
export interface KnownName {
  family: FamilyLayout;
  name: string;
  source: FamilySource;
}

/** One summand of a block's sum as a branch: a conv (with its BN if it has one), a BN or bare identity, or an AvgPool. */
function branchOf(ix: GraphIndex, t: Match['terms'][number], facts: ReturnType<typeof factsOf>, pathOf: (node: number) => string): Branch {
  if (t.kind === 'bare') return { role: 'identity', module: t.input, withoutBn: true };
  if (t.kind === 'bn') return { role: 'identity', module: pathOf(t.bn), bn: bnNames(ix, t.bn) };
  if (t.kind === 'pool') {
    const pool = facts.pools.find((p) => p.node === t.pool)!;
    return { role: 'avgPool', module: scopePath(ix.node(t.pool).name) || ix.label(t.pool), poolKernel: pool.kernel[0], withoutBn: true };
  }
  const f = facts.convs.find((c) => c.node === t.conv)!;
  const role: BranchRole = f.kernel[0] === 1 && facts.k > 1 ? 'oneByOne' : 'dense';
  const branch: Branch = { role, module: pathOf(t.conv), convWeight: f.weight.name, convBias: f.bias?.name, weightShape: f.weight.shape };
  if (t.bn !== undefined) branch.bn = bnNames(ix, t.bn);
  else branch.withoutBn = true;
  return branch;
}

export function trainBlock(ix: GraphIndex, m: Match, naming: Naming, order: ReadonlyMap<string, number>, known?: KnownName): OnnxBlock {
  const facts = factsOf(ix, m);
  const { ref, k } = facts;
  const [outChannels, inPerGroup] = ref.weight.shape;
  const problems = fusionProblems(ix, m, facts);
  const found = known ?? familyNames(ix, m, naming);
  const scopeNode = m.root ?? m.sums[0];
  const name = found?.name ?? claim(naming, (scopeNode === undefined ? '' : scopePath(ix.node(scopeNode).name)) || undefined) ?? numbered(naming);

  const pathOf = (i: number) => (found ? modulePath(ix, i, found.source) : '') || ix.label(i);
  const branches = m.terms.map((t) => branchOf(ix, t, facts, pathOf));
  branches.sort((a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role]);
  const postBn = m.postBn === undefined ? undefined : bnNames(ix, m.postBn);

  const nodes = matchNodes(ix, m);
  const inBlock = new Set(nodes);
  // Constants (zero initializers, pads) that only this block reads go with it.
  const constants = nodes.flatMap((i) => ix.node(i).input.filter((t) => ix.isInitializer(t) && ix.readOnlyWithin(t, inBlock)));
  const paramNames = [...branches.flatMap((b) => [b.convWeight, b.convBias, b.bn?.weight, b.bn?.bias]), postBn?.weight, postBn?.bias];
  const tensors = inFileOrder(order, [
    ...branches.flatMap((b) => [b.convWeight, b.convBias, b.bn?.weight, b.bn?.bias, b.bn?.mean, b.bn?.var]),
    postBn?.weight,
    postBn?.bias,
    postBn?.mean,
    postBn?.var,
    ...constants,
  ]);
  return {
    name,
    // Without names the block is still the pattern every RepVGG family shares.
    family: found?.family.id ?? 'repvgg',
    ...convGeometry(ref, inPerGroup, outChannels, k),
    branches,
    ...(postBn ? { postBn } : {}),
    form: 'train',
    params: { train: sumParams(ix, paramNames), deploy: outChannels * inPerGroup * k * k + outChannels },
    tensors,
    warnings: problems,
    onnx: {
      input: m.input,
      output: ix.node(m.last).output[0],
      nodes,
      nodeNames: nodes.map((i) => ix.node(i).name ?? ''),
      familySource: found?.source ?? 'none',
      fusible: problems.length === 0,
    },
  };
}

/** The activation applied to `tensor`: ReLU, or SiLU as exporters write it (x · Sigmoid(x)). */
function activationOf(ix: GraphIndex, tensor: string): 'relu' | 'silu' | undefined {
  const ops = ix.readers(tensor).map((r) => ix.node(r).opType);
  if (ops.includes('Relu')) return 'relu';
  if (ops.includes('Sigmoid') && ops.includes('Mul')) return 'silu';
  return undefined;
}

/** A lone conv is a deploy-form block only when a family's deploy name says so ('stage1.0.rbr_reparam.weight'). */
export function deployBlock(ix: GraphIndex, i: number, naming: Naming, order: ReadonlyMap<string, number>): OnnxBlock | undefined {
  const f = convFacts(ix, i);
  const node = ix.node(i);
  let name: string | undefined;
  let found: { family: FamilyLayout; source: FamilySource } | undefined;
  // Families that share a deploy name (rbr_reparam: RepVGG, YOLOv6, YOLOv7) are told apart by the activation that follows.
  const activation = activationOf(ix, node.output[0]);
  const families = [...naming.families].sort((a, b) => Number(b.activation === activation) - Number(a.activation === activation));
  for (const family of families) {
    const byWeight = markerPattern(`${family.deploy}.weight`).exec(f.weight.name);
    const byNode = markerPattern(family.deploy).exec(scopePath(node.name));
    const [match, source] = byWeight ? [byWeight, 'initializer-names' as const] : [byNode, 'node-names' as const];
    if (match && (name = claim(naming, match[1] ?? '')) !== undefined) {
      found = { family, source };
      break;
    }
  }
  if (!found || name === undefined) return undefined;
  const [outChannels, inPerGroup, k] = f.weight.shape;
  return {
    name,
    family: found.family.id,
    ...convGeometry(f, inPerGroup, outChannels, k),
    branches: [],
    deploy: { weight: f.weight.name, bias: f.bias?.name, weightShape: f.weight.shape },
    form: 'deploy',
    params: { train: sumParams(ix, [f.weight.name, f.bias?.name]), deploy: outChannels * inPerGroup * k * k + outChannels },
    tensors: inFileOrder(order, [f.weight.name, f.bias?.name]),
    warnings: [],
    onnx: { input: node.input[0], output: node.output[0], nodes: [i], nodeNames: [node.name ?? ''], familySource: found.source, fusible: false },
  };
}
