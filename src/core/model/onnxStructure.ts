import type { OnnxGraph, OnnxNode } from '../formats/onnxModel';
import { isFloatDType, numelOf, type Tensor } from '../formats/tensor';
import { FAMILIES, type Activation, type FamilyLayout } from './families';
import type { Block, BnNames, Branch, BranchRole } from './structure';

/*
 * RepVGG-style blocks found in an ONNX graph by their shape: parallel convs (k×k, smaller odd
 * kernels) and optional identity branches that all read one tensor and are summed by Add nodes.
 * Stride, groups, padding and eps are read from node attributes, so they are facts. Names only
 * label what the shape found: a family's naming in initializer or node names, else the scope of
 * the summing node, else a number.
 */

/** A block before buildStructure places it in a stage. */
export type OnnxBlock = Omit<Block, 'stage'>;

/** What detection needs of an initializer. */
export type InitializerMeta = Pick<Tensor, 'name' | 'shape' | 'dtype'>;

/** BatchNormalization's epsilon when the attribute is absent (the operator's default, so still the graph's own value). */
const ONNX_BN_EPSILON = 1e-5;
const ROLE_ORDER: Readonly<Record<BranchRole, number>> = { dense: 0, oneByOne: 1, identity: 2 };

/**
 * Module path from a torch exporter's node name: '/stage1/stage1.0/rbr_dense/conv/Conv' →
 * 'stage1.0.rbr_dense.conv'. Other naming schemes give ''.
 */
export function scopePath(nodeName: string | undefined): string {
  if (!nodeName?.startsWith('/')) return '';
  const parts = nodeName.split('/').filter((p) => p !== '').slice(0, -1);
  const segments: string[] = [];
  let previous = '';
  for (const part of parts) {
    // A child of a Sequential or ModuleList is scoped 'parent.index', repeating its parent's name.
    if (previous !== '' && part.startsWith(`${previous}.`)) segments[segments.length - 1] = part;
    else segments.push(part);
    previous = part;
  }
  return segments.join('.');
}

function isDefaultDomain(node: OnnxNode): boolean {
  return node.domain === undefined || node.domain === '' || node.domain === 'ai.onnx';
}

function attribute(node: OnnxNode, name: string) {
  return node.attribute.find((a) => a.name === name);
}

function intsAttribute(node: OnnxNode, name: string): number[] | undefined {
  const a = attribute(node, name);
  return a === undefined ? undefined : a.ints.map(Number);
}

function intAttribute(node: OnnxNode, name: string): number | undefined {
  const i = attribute(node, name)?.i;
  return i === undefined ? undefined : Number(i);
}

function stringAttribute(node: OnnxNode, name: string): string | undefined {
  const s = attribute(node, name)?.s;
  return s === undefined ? undefined : new TextDecoder().decode(s);
}

/** Every tensor name read by the nodes of `graph` and of the subgraphs nested in them. */
export function namesReadIn(graph: OnnxGraph, into = new Set<string>()): Set<string> {
  for (const node of graph.node) {
    for (const input of node.input) into.add(input);
    for (const a of node.attribute) {
      if (a.g) namesReadIn(a.g, into);
      for (const g of a.graphs) namesReadIn(g, into);
    }
  }
  return into;
}

/** Producers and consumers of every tensor of the top-level graph. */
class GraphIndex {
  readonly producer = new Map<string, number>();
  private readonly consumers = new Map<string, number[]>();
  /** Tensors whose value must stay observable: graph outputs and anything a subgraph reads. */
  private readonly pinned = new Set<string>();

  constructor(
    readonly graph: OnnxGraph,
    readonly initializers: ReadonlyMap<string, InitializerMeta>,
  ) {
    graph.node.forEach((node, i) => {
      for (const out of node.output) if (out !== '') this.producer.set(out, i);
      for (const input of node.input) {
        const list = this.consumers.get(input);
        if (list) list.push(i);
        else this.consumers.set(input, [i]);
      }
      for (const a of node.attribute) {
        if (a.g) namesReadIn(a.g, this.pinned);
        for (const g of a.graphs) namesReadIn(g, this.pinned);
      }
    });
    for (const out of graph.output) if (out.name) this.pinned.add(out.name);
  }

  node(i: number): OnnxNode {
    return this.graph.node[i];
  }

  /** The one node that reads `tensor`, if nothing else does (no other node, graph output or subgraph): only then may it disappear. */
  soleReader(tensor: string): number | undefined {
    const list = this.consumers.get(tensor);
    return list !== undefined && list.length === 1 && !this.pinned.has(tensor) ? list[0] : undefined;
  }

  readers(tensor: string): readonly number[] {
    return this.consumers.get(tensor) ?? [];
  }

  readOnlyBy(tensor: string, i: number): boolean {
    return this.soleReader(tensor) === i;
  }

  /** A 4-D float initializer (a conv weight) or a 1-D one (bias, BN parameter). */
  param(name: string | undefined, rank: 1 | 4): InitializerMeta | undefined {
    const t = name ? this.initializers.get(name) : undefined;
    return t !== undefined && t.shape.length === rank && isFloatDType(t.dtype) ? t : undefined;
  }

  isSum(i: number | undefined): i is number {
    if (i === undefined) return false;
    const node = this.node(i);
    return (node.opType === 'Add' || node.opType === 'Sum') && isDefaultDomain(node) && node.output.length === 1 && node.input.every((s) => s !== '');
  }

  isConv(i: number | undefined): i is number {
    if (i === undefined) return false;
    const node = this.node(i);
    if (node.opType !== 'Conv' || !isDefaultDomain(node) || node.output.length !== 1) return false;
    if (node.input.length < 2 || node.input.length > 3 || !this.param(node.input[1], 4)) return false;
    if (node.input.length === 3 && node.input[2] !== '' && !this.param(node.input[2], 1)) return false;
    // A 2-D conv's list attributes, when present, have one entry per spatial axis (pads: begins and ends).
    const lengths = { strides: 2, dilations: 2, kernel_shape: 2, pads: 4 };
    return Object.entries(lengths).every(([name, n]) => (intsAttribute(node, name)?.length ?? n) === n);
  }

  /** Inference-mode BatchNormalization with its four parameters stored in the file. */
  isBn(i: number | undefined): i is number {
    if (i === undefined) return false;
    const node = this.node(i);
    if (node.opType !== 'BatchNormalization' || !isDefaultDomain(node) || node.input.length !== 5) return false;
    if (node.output.slice(1).some((o) => o !== '') || (intAttribute(node, 'training_mode') ?? 0) !== 0) return false;
    return node.input.slice(1).every((p) => this.param(p, 1) !== undefined);
  }
}

/** One summand of a block: a conv with or without BN, a BN of the input, or the input itself. */
type Term =
  | { kind: 'conv'; input: string; conv: number; bn?: number }
  | { kind: 'bn'; input: string; bn: number }
  | { kind: 'bare'; input: string };

function classify(ix: GraphIndex, tensor: string, sum: number): Term {
  const p = ix.producer.get(tensor);
  if (p !== undefined && ix.readOnlyBy(tensor, sum)) {
    if (ix.isConv(p)) return { kind: 'conv', input: ix.node(p).input[0], conv: p };
    if (ix.isBn(p)) {
      const bnInput = ix.node(p).input[0];
      const q = ix.producer.get(bnInput);
      if (ix.isConv(q) && ix.readOnlyBy(bnInput, p)) return { kind: 'conv', input: ix.node(q).input[0], conv: q, bn: p };
      return { kind: 'bn', input: bnInput, bn: p };
    }
  }
  return { kind: 'bare', input: tensor };
}

/** The summands of a chain of Add/Sum nodes whose inner results feed nothing else. */
function flattenSum(ix: GraphIndex, root: number): { sums: number[]; terms: { tensor: string; sum: number }[] } {
  const sums: number[] = [root];
  const terms: { tensor: string; sum: number }[] = [];
  for (const tensor of ix.node(root).input) {
    const p = ix.producer.get(tensor);
    if (ix.isSum(p) && ix.readOnlyBy(tensor, root)) {
      const inner = flattenSum(ix, p);
      sums.push(...inner.sums);
      terms.push(...inner.terms);
    } else {
      terms.push({ tensor, sum: root });
    }
  }
  return { sums, terms };
}

interface Match {
  root: number;
  sums: number[];
  input: string;
  terms: Term[];
}

/** The block summed at `root`, if every summand is a branch on one common input. */
function matchBlock(ix: GraphIndex, root: number): Match | undefined {
  const { sums, terms: raw } = flattenSum(ix, root);
  const terms = raw.map((t) => classify(ix, t.tensor, t.sum));
  const convs = terms.filter((t) => t.kind === 'conv');
  if (terms.length < 2 || convs.length === 0) return undefined;
  const input = convs[0].input;
  if (!terms.every((t) => t.input === input)) return undefined;
  return { root, sums, input, terms };
}

/** Blocks at every sum, outermost first; a sum that is no block may still hold one in an inner Add. */
function findMatches(ix: GraphIndex): Match[] {
  const matches: Match[] = [];
  const visit = (root: number) => {
    const m = matchBlock(ix, root);
    if (m) {
      matches.push(m);
      return;
    }
    for (const tensor of ix.node(root).input) {
      const p = ix.producer.get(tensor);
      if (ix.isSum(p) && ix.readOnlyBy(tensor, root)) visit(p);
    }
  };
  ix.graph.node.forEach((node, i) => {
    if (!ix.isSum(i)) return;
    // Inner sums of a chain are reached from its outermost one.
    if (!ix.isSum(ix.soleReader(node.output[0]))) visit(i);
  });
  return matches.sort((a, b) => a.root - b.root);
}

// ---------------------------------------------------------------------------------------------
// Names

function markerPattern(marker: string): RegExp {
  const escaped = marker.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('\\{i\\}', '\\d+');
  return new RegExp(`^(?:(.*)\\.)?${escaped}$`);
}

/** The block path shared by every branch path, if each sits where `family` puts that kind of branch. */
function prefixIn(family: FamilyLayout, paths: readonly { path: string; conv: boolean }[]): string | undefined {
  const convMarkers = [markerPattern(family.dense.conv), markerPattern(family.oneByOne.conv)];
  const identity = markerPattern(family.identity);
  let prefix: string | undefined;
  for (const { path, conv } of paths) {
    const m = (conv ? convMarkers : [identity]).map((re) => re.exec(path)).find((x) => x !== null);
    const p = m?.[1] ?? (m ? '' : undefined);
    if (p === undefined || (prefix !== undefined && p !== prefix)) return undefined;
    prefix = p;
  }
  return prefix;
}

interface Naming {
  families: FamilyLayout[];
  used: Set<string>;
  unnamed: number;
}

function claim(naming: Naming, name: string | undefined): string | undefined {
  if (name === undefined || naming.used.has(name)) return undefined;
  naming.used.add(name);
  return name;
}

// ---------------------------------------------------------------------------------------------
// Blocks

interface ConvFacts {
  node: number;
  weight: InitializerMeta;
  bias?: InitializerMeta;
  kernel: [number, number];
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
  autoPad: string;
}

function convFacts(ix: GraphIndex, i: number): ConvFacts {
  const node = ix.node(i);
  const weight = ix.param(node.input[1], 4)!;
  const bias = node.input[2] ? ix.param(node.input[2], 1) : undefined;
  return {
    node: i,
    weight,
    bias,
    kernel: [weight.shape[2], weight.shape[3]],
    strides: intsAttribute(node, 'strides') ?? [1, 1],
    pads: intsAttribute(node, 'pads') ?? [0, 0, 0, 0],
    dilations: intsAttribute(node, 'dilations') ?? [1, 1],
    group: intAttribute(node, 'group') ?? 1,
    autoPad: stringAttribute(node, 'auto_pad') ?? 'NOTSET',
  };
}

function bnNames(ix: GraphIndex, i: number): BnNames {
  const node = ix.node(i);
  const [, weight, bias, mean, variance] = node.input;
  return { weight, bias, mean, var: variance, eps: attribute(node, 'epsilon')?.f ?? ONNX_BN_EPSILON, epsSource: 'attribute' };
}

const nodeLabel = (ix: GraphIndex, i: number) => ix.node(i).name || `${ix.node(i).opType} node #${i}`;

/** Why the branches cannot become one conv, one reason per disagreement. */
function fusionProblems(ix: GraphIndex, convs: readonly ConvFacts[], ref: ConvFacts, hasIdentity: boolean, bns: readonly number[]): string[] {
  const problems: string[] = [];
  const [out, inPerGroup] = ref.weight.shape;
  for (const c of convs) {
    const label = nodeLabel(ix, c.node);
    const [kh, kw] = c.kernel;
    const declared = intsAttribute(ix.node(c.node), 'kernel_shape');
    if (declared && (declared[0] !== kh || declared[1] !== kw)) problems.push(`${label}: kernel_shape [${declared.join(', ')}] does not match its weight ${kh}×${kw}`);
    if (kh !== kw || kh % 2 === 0) problems.push(`${label}: kernel ${kh}×${kw} is not square and odd, so it cannot be centred in the block's kernel`);
    if (c.weight.shape[0] !== out || c.weight.shape[1] !== inPerGroup) problems.push(`${label}: weight [${c.weight.shape.join(', ')}] does not match ${out}×${inPerGroup}`);
    if (c.group !== ref.group) problems.push(`${label}: group ${c.group}, other branches ${ref.group}`);
    if (c.strides.some((s) => s !== ref.strides[0])) problems.push(`${label}: strides [${c.strides.join(', ')}] differ from the block's stride ${ref.strides[0]}`);
    if (c.dilations.some((d) => d !== 1)) problems.push(`${label}: dilations [${c.dilations.join(', ')}]; only dilation 1 fuses exactly`);
    if (c.autoPad !== 'NOTSET') problems.push(`${label}: auto_pad ${c.autoPad}; only explicit pads can be checked`);
    else if (c.pads.some((p) => p !== Math.floor(kh / 2))) problems.push(`${label}: pads [${c.pads.join(', ')}] do not centre its ${kh}×${kw} kernel (${Math.floor(kh / 2)} on every side is needed)`);
    if (c.bias && c.bias.shape[0] !== out) problems.push(`${label}: bias has ${c.bias.shape[0]} values, expected ${out}`);
  }
  for (const b of bns) {
    for (const p of ix.node(b).input.slice(1)) {
      const n = ix.param(p, 1)!.shape[0];
      if (n !== out) problems.push(`${nodeLabel(ix, b)}: ${p} has ${n} values, expected ${out}`);
    }
  }
  if (hasIdentity) {
    const inChannels = inPerGroup * ref.group;
    if (inChannels !== out) problems.push(`identity branch with in_channels ${inChannels} ≠ out_channels ${out}`);
    if (ref.strides[0] !== 1) problems.push(`identity branch next to convs of stride ${ref.strides[0]}`);
  }
  return problems;
}

function sumParams(ix: GraphIndex, names: readonly (string | undefined)[]): number {
  let n = 0;
  for (const name of names) if (name) n += numelOf(ix.initializers.get(name)!.shape, name);
  return n;
}

/** The tensors of `names` in initializer order. */
function inFileOrder(order: ReadonlyMap<string, number>, names: Iterable<string | undefined>): string[] {
  const unique = [...new Set([...names].filter((n): n is string => n !== undefined && order.has(n)))];
  return unique.sort((a, b) => order.get(a)! - order.get(b)!);
}

function trainBlock(ix: GraphIndex, m: Match, naming: Naming, order: ReadonlyMap<string, number>): OnnxBlock {
  const convTerms = m.terms.filter((t): t is Extract<Term, { kind: 'conv' }> => t.kind === 'conv');
  const facts = convTerms.map((t) => convFacts(ix, t.conv));
  const k = Math.max(...facts.map((f) => f.kernel[0]));
  const ref = facts.find((f) => f.kernel[0] === k)!;
  const [outChannels, inPerGroup] = ref.weight.shape;
  const bns = m.terms.flatMap((t) => (t.kind === 'bare' || t.bn === undefined ? [] : [t.bn]));
  const problems = fusionProblems(ix, facts, ref, convTerms.length < m.terms.length, bns);

  // Branch paths from initializer names ('stage1.0.rbr_dense.conv.weight') or else from node scopes.
  const nodeOf = (t: Exclude<Term, { kind: 'bare' }>) => ix.node(t.kind === 'conv' ? t.conv : t.bn);
  const sources = [
    ['initializer-names', (t: Exclude<Term, { kind: 'bare' }>) => {
      const param = nodeOf(t).input[1];
      return param.endsWith('.weight') ? param.slice(0, -'.weight'.length) : '';
    }],
    ['node-names', (t: Exclude<Term, { kind: 'bare' }>) => scopePath(nodeOf(t).name)],
  ] as const;
  let family: FamilyLayout | undefined;
  let name: string | undefined;
  let familySource: 'initializer-names' | 'node-names' | 'none' = 'none';
  let pathOf: ((t: Exclude<Term, { kind: 'bare' }>) => string) | undefined;
  for (const [source, path] of sources) {
    const candidates = m.terms.flatMap((t) => (t.kind === 'bare' ? [] : [{ path: path(t), conv: t.kind === 'conv' }]));
    if (candidates.some((c) => c.path === '')) continue;
    for (const f of naming.families) {
      name = claim(naming, prefixIn(f, candidates));
      if (name === undefined) continue;
      [family, familySource, pathOf] = [f, source, path];
      break;
    }
    if (family) break;
  }
  name ??= claim(naming, scopePath(ix.node(m.root).name) || undefined);
  while (name === undefined) name = claim(naming, `blocks.${naming.unnamed++}`);

  const branches: Branch[] = [];
  for (const t of m.terms) {
    if (t.kind === 'bare') {
      branches.push({ role: 'identity', module: t.input, withoutBn: true });
      continue;
    }
    const module = pathOf?.(t) ?? nodeLabel(ix, t.kind === 'conv' ? t.conv : t.bn);
    if (t.kind === 'bn') {
      branches.push({ role: 'identity', module, bn: bnNames(ix, t.bn) });
      continue;
    }
    const f = facts[convTerms.indexOf(t)];
    const role: BranchRole = f.kernel[0] === 1 && k > 1 ? 'oneByOne' : 'dense';
    const branch: Branch = { role, module, convWeight: f.weight.name, convBias: f.bias?.name, weightShape: f.weight.shape };
    if (t.bn !== undefined) branch.bn = bnNames(ix, t.bn);
    else branch.withoutBn = true;
    branches.push(branch);
  }
  branches.sort((a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role]);

  const nodes = [...m.sums, ...convTerms.map((t) => t.conv), ...bns].sort((a, b) => a - b);
  const tensors = inFileOrder(order, branches.flatMap((b) => [b.convWeight, b.convBias, b.bn?.weight, b.bn?.bias, b.bn?.mean, b.bn?.var]));
  return {
    name,
    // Without names the block is still the pattern every RepVGG family shares.
    family: family?.id ?? 'repvgg',
    inChannels: inPerGroup * ref.group,
    outChannels,
    kernel: k,
    stride: ref.strides[0],
    strideSource: 'attribute',
    padding: ref.pads[0],
    paddingSource: 'attribute',
    groups: ref.group,
    groupsSource: 'attribute',
    dilation: ref.dilations[0],
    branches,
    form: 'train',
    params: {
      train: sumParams(ix, branches.flatMap((b) => [b.convWeight, b.convBias, b.bn?.weight, b.bn?.bias])),
      deploy: outChannels * inPerGroup * k * k + outChannels,
    },
    tensors,
    warnings: problems,
    onnx: {
      input: m.input,
      output: ix.node(m.root).output[0],
      nodes,
      nodeNames: nodes.map((i) => ix.node(i).name ?? ''),
      familySource,
      fusible: problems.length === 0,
    },
  };
}

/** The activation applied to `tensor`: ReLU, or SiLU as exporters write it (x · Sigmoid(x)). */
function activationOf(ix: GraphIndex, tensor: string): Activation | undefined {
  const ops = ix.readers(tensor).map((r) => ix.node(r).opType);
  if (ops.includes('Relu')) return 'relu';
  if (ops.includes('Sigmoid') && ops.includes('Mul')) return 'silu';
  return undefined;
}

/** A lone conv is a deploy-form block only when a family's deploy name says so ('stage1.0.rbr_reparam.weight'). */
function deployBlock(ix: GraphIndex, i: number, naming: Naming, order: ReadonlyMap<string, number>): OnnxBlock | undefined {
  const f = convFacts(ix, i);
  const node = ix.node(i);
  let name: string | undefined;
  let found: { family: FamilyLayout; source: 'initializer-names' | 'node-names' } | undefined;
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
    inChannels: inPerGroup * f.group,
    outChannels,
    kernel: k,
    stride: f.strides[0],
    strideSource: 'attribute',
    padding: f.pads[0],
    paddingSource: 'attribute',
    groups: f.group,
    groupsSource: 'attribute',
    dilation: f.dilations[0],
    branches: [],
    deploy: { weight: f.weight.name, bias: f.bias?.name, weightShape: f.weight.shape },
    form: 'deploy',
    params: { train: sumParams(ix, [f.weight.name, f.bias?.name]), deploy: outChannels * inPerGroup * k * k + outChannels },
    tensors: inFileOrder(order, [f.weight.name, f.bias?.name]),
    warnings: [],
    onnx: { input: node.input[0], output: node.output[0], nodes: [i], nodeNames: [node.name ?? ''], familySource: found.source, fusible: false },
  };
}

/**
 * Every re-parameterizable block of the top-level graph, in graph order. `initializers` are the
 * file's tensors (initializers of types RepLens reads); a weight that is not one of them is no branch.
 */
export function detectOnnxBlocks(graph: OnnxGraph, initializers: readonly InitializerMeta[]): OnnxBlock[] {
  const ix = new GraphIndex(graph, new Map(initializers.map((t) => [t.name, t])));
  const order = new Map(initializers.map((t, i) => [t.name, i]));
  const names = [...initializers.map((t) => t.name), ...graph.node.map((n) => scopePath(n.name))];
  const naming: Naming = {
    // Families that share block names are told apart by names elsewhere in the model, as for checkpoints.
    families: FAMILIES.filter((f) => f.modelHint === undefined || names.some((n) => f.modelHint!.test(n))),
    used: new Set(),
    unnamed: 0,
  };
  const matches = findMatches(ix);
  const inTrainBlocks = new Set(matches.flatMap((m) => m.terms.flatMap((t) => (t.kind === 'conv' ? [t.conv] : []))));
  const found: { at: number; block: OnnxBlock }[] = matches.map((m) => ({ at: m.root, block: trainBlock(ix, m, naming, order) }));
  graph.node.forEach((_, i) => {
    if (!ix.isConv(i) || inTrainBlocks.has(i)) return;
    const block = deployBlock(ix, i, naming, order);
    if (block) found.push({ at: i, block });
  });
  return found.sort((a, b) => a.at - b.at).map((f) => f.block);
}
