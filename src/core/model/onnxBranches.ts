import { GraphIndex, intAttribute, intsAttribute, isDefaultDomain, stringAttribute, type InitializerMeta } from './onnxGraph';
import { noOp } from './onnxNoops';

/*
 * One summand of a block, read backwards from the sum: a conv (with or without its BN), a BN of
 * the input, an average pool of the input (QARepVGGBlockV2), or the input itself. No-op nodes
 * may sit anywhere along the way; every tensor passed on must be read by the next node alone,
 * so the whole branch can disappear into the fused conv.
 */

interface TermBase {
  /** The tensor the branch reads (after its own no-ops). */
  input: string;
  /** No-op nodes of the branch. */
  noops: number[];
}

export type Term =
  | (TermBase & { kind: 'conv'; conv: number; bn?: number })
  | (TermBase & { kind: 'bn'; bn: number })
  | (TermBase & { kind: 'pool'; pool: number; pad?: number })
  | (TermBase & { kind: 'bare' });

export function isAvgPool(ix: GraphIndex, i: number | undefined): i is number {
  if (i === undefined) return false;
  const node = ix.node(i);
  return (
    node.opType === 'AveragePool' &&
    isDefaultDomain(node) &&
    node.input.length === 1 &&
    node.output.length === 1 &&
    intsAttribute(node, 'kernel_shape')?.length === 2
  );
}

function isPad(ix: GraphIndex, i: number | undefined): i is number {
  if (i === undefined) return false;
  const node = ix.node(i);
  return node.opType === 'Pad' && isDefaultDomain(node) && node.output.length === 1 && node.input[0] !== '';
}

/** The branch that ends in `tensor`, which node `reader` sums. */
export function walkTerm(ix: GraphIndex, tensor: string, reader: number): Term {
  const noops: number[] = [];
  let t = tensor;
  let consumer = reader;
  const next = (p: number) => {
    consumer = p;
    return ix.node(p).input[0];
  };
  const skipNoops = () => {
    for (;;) {
      const p = ix.producer.get(t);
      const n = noOp(ix, p);
      if (p === undefined || n === undefined || !ix.readOnlyBy(t, consumer)) return;
      noops.push(p);
      consumer = p;
      t = n.through;
    }
  };
  skipNoops();
  const p = ix.producer.get(t);
  if (p === undefined || !ix.readOnlyBy(t, consumer)) return { kind: 'bare', input: t, noops };
  if (ix.isConv(p)) return { kind: 'conv', conv: p, input: next(p), noops };
  if (ix.isBn(p)) {
    t = next(p);
    const bn = p;
    skipNoops();
    const q = ix.producer.get(t);
    if (ix.isConv(q) && ix.readOnlyBy(t, consumer)) return { kind: 'conv', conv: q, bn, input: next(q), noops };
    // An identity BN: no-ops between it and the input belong to the branch too.
    return { kind: 'bn', bn, input: t, noops };
  }
  if (isAvgPool(ix, p)) {
    t = next(p);
    const q = ix.producer.get(t);
    if (isPad(ix, q) && ix.readOnlyBy(t, p)) return { kind: 'pool', pool: p, pad: q, input: ix.node(q).input[0], noops };
    return { kind: 'pool', pool: p, input: t, noops };
  }
  return { kind: 'bare', input: t, noops };
}

// ---------------------------------------------------------------------------------------------
// Facts of conv and pool branches, read from node attributes.

export interface ConvFacts {
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

/** A block's channels and conv geometry as the attributes of its k×k Conv state them. */
export function convGeometry(conv: ConvFacts, inPerGroup: number, outChannels: number, kernel: number) {
  return {
    inChannels: inPerGroup * conv.group,
    outChannels,
    kernel,
    stride: conv.strides[0],
    strideSource: 'attribute' as const,
    padding: conv.pads[0],
    paddingSource: 'attribute' as const,
    groups: conv.group,
    groupsSource: 'attribute' as const,
    dilation: conv.dilations[0],
  };
}

export function convFacts(ix: GraphIndex, i: number): ConvFacts {
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

export interface PoolFacts {
  node: number;
  kernel: [number, number];
  strides: number[];
  /** What keeps the pool from being a k×k conv with 1/k² weights on each channel (empty when it is one). */
  problems: string[];
}

/** The padding a Pad node adds on the spatial axes ([top, left, bottom, right]), or why it cannot be read or fused. */
function padFacts(ix: GraphIndex, i: number): { pads?: number[]; problems: string[] } {
  const node = ix.node(i);
  const label = ix.label(i);
  const problems: string[] = [];
  const mode = stringAttribute(node, 'mode') ?? 'constant';
  if (mode !== 'constant') problems.push(`${label}: mode '${mode}'; only zero padding is an average pool's conv`);
  // Opset 11 moved pads and the value from attributes to inputs; opset 18 added axes.
  if (node.input[3]) problems.push(`${label}: pads only some axes (an axes input)`);
  let pads = intsAttribute(node, 'pads');
  if (node.input[1]) {
    const c = ix.constant(node.input[1]);
    if (c?.values === undefined) problems.push(`${label}: its pads (${node.input[1]}) are no constant RepLens can read from the graph`);
    else pads = [...c.values];
  }
  let value = node.attribute.find((a) => a.name === 'value')?.f ?? 0;
  if (node.input[2]) {
    const c = ix.constant(node.input[2]);
    value = c?.values?.length === 1 ? c.values[0] : NaN;
  }
  if (value !== 0) problems.push(`${label}: pads with ${Number.isNaN(value) ? 'a value RepLens cannot read' : value}, not zeros`);
  if (pads === undefined) return { problems };
  if (pads.length !== 8 || pads[0] !== 0 || pads[1] !== 0 || pads[4] !== 0 || pads[5] !== 0) {
    problems.push(`${label}: pads [${pads.join(', ')}] do not pad only the two spatial axes of a 4-D tensor`);
    return { problems };
  }
  return { pads: [pads[2], pads[3], pads[6], pads[7]], problems };
}

export function poolFacts(ix: GraphIndex, i: number, pad: number | undefined): PoolFacts {
  const node = ix.node(i);
  const label = ix.label(i);
  const [kh, kw] = intsAttribute(node, 'kernel_shape')!;
  const strides = intsAttribute(node, 'strides') ?? [1, 1];
  const own = intsAttribute(node, 'pads') ?? [0, 0, 0, 0];
  const problems: string[] = [];
  const autoPad = stringAttribute(node, 'auto_pad') ?? 'NOTSET';
  if (autoPad !== 'NOTSET') problems.push(`${label}: auto_pad ${autoPad}; only explicit pads can be checked`);
  if ((intsAttribute(node, 'dilations') ?? [1, 1]).some((d) => d !== 1)) problems.push(`${label}: dilated pooling`);
  if (kh !== kw || kh % 2 === 0) problems.push(`${label}: window ${kh}×${kw} is not square and odd`);
  if (own.length !== 4) problems.push(`${label}: pads [${own.join(', ')}] are not those of a 2-D pool`);
  // Zeros counted in the average: only then is every window, at the border too, a 1/k² weighted sum.
  if (own.some((p) => p !== 0) && (intAttribute(node, 'count_include_pad') ?? 0) !== 1) {
    problems.push(`${label}: count_include_pad 0 averages fewer values at the border; one conv cannot express that`);
  }
  if ((intAttribute(node, 'ceil_mode') ?? 0) !== 0 && strides.some((s) => s !== 1)) problems.push(`${label}: ceil_mode 1 with stride ${strides.join('×')}`);
  let pads = own;
  if (pad !== undefined) {
    const p = padFacts(ix, pad);
    problems.push(...p.problems);
    pads = p.pads ? own.map((v, j) => v + p.pads![j]) : own;
  }
  const centred = Math.floor(kh / 2);
  if (problems.length === 0 && pads.some((v) => v !== centred)) {
    problems.push(
      `${label}: ${pad === undefined ? '' : 'with its Pad, '}pads [${pads.join(', ')}] do not centre its ${kh}×${kw} window (${centred} on every side is needed)`,
    );
  }
  return { node: i, kernel: [kh, kw], strides, problems };
}
