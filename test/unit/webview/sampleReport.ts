/**
 * Realistic ReportData for developing and testing the report view without a model:
 * a RepVGG-like chain of blocks (3×3 conv + BN, 1×1 conv + BN, identity BN, adds, ReLU)
 * in train form, Conv + ReLU per block in deploy form, laid out with a simple layered layout.
 */
import { loadNote } from '../../../src/core/convert/loadNote';
import { mulberry32 } from '../../../src/core/parity/prng';
import type { BlockReport, GraphView, KernelStats, ReportData } from '../../../src/shared/reportData';

/** Deterministic uniforms in [0, 1), so screenshots and tests see the same report every time. */
export function seededRandom(seed: number): () => number {
  const bits = mulberry32(seed);
  return () => bits() / 4294967296;
}

interface SpecNode {
  id: string;
  label: string;
  op: string;
  block?: string;
  stage?: string;
  detail?: string;
}

const NODE_HEIGHT = 26;
const RANK_GAP = 26;
const NODE_GAP = 18;
const MARGIN = 16;
const GROUP_PADDING = 12;
const GROUP_LABEL = 14;

/** Longest-path ranks, nodes of a rank side by side and centred; the same box conventions as src/core/report/layout.ts. */
export function layeredLayout(nodes: SpecNode[], edges: { from: string; to: string }[]): GraphView {
  const rank = new Map<string, number>(nodes.map((n) => [n.id, 0]));
  // Nodes are listed in topological order, so one pass settles every rank.
  const incoming = new Map<string, string[]>();
  for (const e of edges) incoming.set(e.to, [...(incoming.get(e.to) ?? []), e.from]);
  for (const n of nodes) for (const from of incoming.get(n.id) ?? []) rank.set(n.id, Math.max(rank.get(n.id)!, rank.get(from)! + 1));
  const rows = new Map<number, SpecNode[]>();
  for (const n of nodes) rows.set(rank.get(n.id)!, [...(rows.get(rank.get(n.id)!) ?? []), n]);
  const width = (n: SpecNode) => Math.max(60, n.label.length * 7 + 20);
  const rowWidth = (row: SpecNode[]) => row.reduce((s, n) => s + width(n), 0) + NODE_GAP * (row.length - 1);
  const maxWidth = Math.max(...[...rows.values()].map(rowWidth));
  const placed = new Map<string, GraphView['nodes'][number]>();
  for (const [r, row] of rows) {
    let x = MARGIN + (maxWidth - rowWidth(row)) / 2;
    for (const n of row) {
      placed.set(n.id, { ...n, x, y: MARGIN + GROUP_LABEL + GROUP_PADDING + r * (NODE_HEIGHT + RANK_GAP), width: width(n), height: NODE_HEIGHT });
      x += width(n) + NODE_GAP;
    }
  }
  const graphNodes = nodes.map((n) => placed.get(n.id)!);
  const graphEdges = edges.map((e) => {
    const a = placed.get(e.from)!;
    const b = placed.get(e.to)!;
    const start = { x: a.x + a.width / 2, y: a.y + a.height };
    const end = { x: b.x + b.width / 2, y: b.y };
    return { from: e.from, to: e.to, points: [start, { x: start.x, y: end.y - RANK_GAP / 2 }, end] };
  });
  const boxes = new Map<string, { x0: number; y0: number; x1: number; y1: number }>();
  for (const n of graphNodes) {
    if (!n.stage) continue;
    const b = boxes.get(n.stage) ?? { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    boxes.set(n.stage, { x0: Math.min(b.x0, n.x), y0: Math.min(b.y0, n.y), x1: Math.max(b.x1, n.x + n.width), y1: Math.max(b.y1, n.y + n.height) });
  }
  const groups = [...boxes].map(([stage, b]) => ({
    stage,
    x: b.x0 - GROUP_PADDING,
    y: b.y0 - GROUP_PADDING - GROUP_LABEL,
    width: b.x1 - b.x0 + 2 * GROUP_PADDING,
    height: b.y1 - b.y0 + 2 * GROUP_PADDING + GROUP_LABEL,
  }));
  const bottom = Math.max(...graphNodes.map((n) => n.y + n.height));
  return { nodes: graphNodes, edges: graphEdges, groups, width: maxWidth + 2 * MARGIN, height: bottom + MARGIN + GROUP_PADDING };
}

export interface SampleOptions {
  /** Blocks per stage. */
  stages: number[];
  /** Output channels per stage. */
  widths: number[];
  seed?: number;
  /** Indices of blocks whose parity fails. */
  failing?: number[];
  /** Indices of blocks whose fused kernel gets one large outlier channel. */
  outliers?: number[];
  /** Leave out parity entirely, as when it could not run. */
  noParity?: boolean;
}

function kernelStats(rand: () => number, channels: number, outlier: boolean): KernelStats {
  const channelMaxAbs = Array.from({ length: channels }, () => 0.05 + 0.25 * rand());
  if (outlier) channelMaxAbs[Math.floor(rand() * channels)] = 2 + 3 * rand();
  const sorted = [...channelMaxAbs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  const maxAbs = sorted[sorted.length - 1];
  return { channelMaxAbs, outlierRatio: maxAbs / median, maxAbs };
}

export function sampleReport(opts: SampleOptions): ReportData {
  const rand = seededRandom(opts.seed ?? 1);
  const failing = new Set(opts.failing ?? []);
  const outliers = new Set(opts.outliers ?? []);
  const rtol = 1e-4;
  const blocks: BlockReport[] = [];
  const before = { nodes: [] as SpecNode[], edges: [] as { from: string; to: string }[] };
  const after = { nodes: [] as SpecNode[], edges: [] as { from: string; to: string }[] };
  before.nodes.push({ id: 'input:x', label: 'x', op: 'Input' });
  after.nodes.push({ id: 'input:x', label: 'x', op: 'Input' });
  let prevBefore = 'input:x';
  let prevAfter = 'input:x';
  let inChannels = 3;
  let index = 0;
  let paramsBefore = 0;
  let paramsAfter = 0;
  let macsBefore = 0;
  let macsAfter = 0;
  let spatial = 224;
  opts.stages.forEach((count, s) => {
    const stage = `stage${s}`;
    for (let j = 0; j < count; j++, index++) {
      const name = `${stage}.${j}`;
      const out = opts.widths[s];
      const stride = j === 0 ? 2 : 1;
      spatial = Math.ceil(spatial / stride);
      const identity = stride === 1 && inChannels === out;
      const p3 = out * inChannels * 9 + 4 * out;
      const p1 = out * inChannels + 4 * out;
      const pid = identity ? 4 * out : 0;
      const pb = p3 + p1 + pid;
      const pa = out * inChannels * 9 + out;
      paramsBefore += pb;
      paramsAfter += pa;
      macsBefore += out * inChannels * 10 * spatial * spatial;
      macsAfter += out * inChannels * 9 * spatial * spatial;
      const fail = failing.has(index);
      const maxRel = fail ? 3e-3 * (1 + rand()) : 10 ** (-7.5 + 3.4 * rand());
      blocks.push({
        name,
        stage,
        inChannels,
        outChannels: out,
        kernel: 3,
        stride,
        strideInferred: j === 0 && s > 0,
        groups: 1,
        branches: ['3×3 conv + BN', '1×1 conv + BN', ...(identity ? ['identity BN'] : [])],
        paramsBefore: pb,
        paramsAfter: pa,
        kernelStats: kernelStats(rand, out, outliers.has(index)),
        parity: opts.noParity ? undefined : { maxAbs: maxRel * (0.5 + 2 * rand()), maxRel, cosine: 1 - maxRel * maxRel * rand(), pass: !fail },
        warnings: fail ? ['BN running_var has 3 channels below eps; the fused scale is dominated by eps.'] : [],
      });
      const b = (suffix: string, label: string, op: string, detail = '') => {
        const id = `${name}.${suffix}`;
        before.nodes.push({ id, label, op, block: name, stage, detail: `${name}/${suffix}${detail ? `\n${detail}` : ''}` });
        return id;
      };
      const c3 = b('dense.conv', 'Conv 3×3', 'Conv', `strides=[${stride},${stride}] pads=[1,1,1,1]`);
      const c1 = b('1x1.conv', 'Conv 1×1', 'Conv', `strides=[${stride},${stride}]`);
      const bn3 = b('dense.bn', 'BatchNorm', 'BatchNormalization', 'epsilon=1e-5');
      const bn1 = b('1x1.bn', 'BatchNorm', 'BatchNormalization', 'epsilon=1e-5');
      before.edges.push({ from: prevBefore, to: c3 }, { from: prevBefore, to: c1 }, { from: c3, to: bn3 }, { from: c1, to: bn1 });
      const add1 = b('add0', 'Add', 'Add');
      before.edges.push({ from: bn3, to: add1 }, { from: bn1, to: add1 });
      let last = add1;
      if (identity) {
        const bnId = b('identity', 'BatchNorm', 'BatchNormalization', 'epsilon=1e-5');
        before.edges.push({ from: prevBefore, to: bnId });
        const add2 = b('add1', 'Add', 'Add');
        before.edges.push({ from: add1, to: add2 }, { from: bnId, to: add2 });
        last = add2;
      }
      const relu = b('relu', 'Relu', 'Relu');
      before.edges.push({ from: last, to: relu });
      prevBefore = relu;

      const conv = `${name}.reparam`;
      const reluA = `${name}.relu`;
      after.nodes.push(
        { id: conv, label: 'Conv 3×3', op: 'Conv', block: name, stage, detail: `${name}/rbr_reparam\nstrides=[${stride},${stride}]` },
        { id: reluA, label: 'Relu', op: 'Relu', block: name, stage },
      );
      after.edges.push({ from: prevAfter, to: conv }, { from: conv, to: reluA });
      prevAfter = reluA;
      inChannels = out;
    }
  });
  for (const g of [before, after]) {
    const tail = g === before ? prevBefore : prevAfter;
    g.nodes.push(
      { id: 'head.gap', label: 'GlobalAveragePool', op: 'GlobalAveragePool' },
      { id: 'head.fc', label: 'Gemm', op: 'Gemm' },
      { id: 'output:logits', label: 'logits', op: 'Output' },
    );
    g.edges.push({ from: tail, to: 'head.gap' }, { from: 'head.gap', to: 'head.fc' }, { from: 'head.fc', to: 'output:logits' });
  }
  const anyFail = blocks.some((b) => b.parity && !b.parity.pass);
  const worst = Math.max(...blocks.map((b) => b.parity?.maxRel ?? 0));
  const input = '/home/dev/models/repvgg_a0_train.pth';
  const output = '/home/dev/models/repvgg_a0_train.deploy.pth';
  return {
    input,
    output,
    stamps: {
      input: { bytes: paramsBefore * 4 + 41_213, modifiedMs: 1_735_689_000_000 },
      output: { bytes: paramsAfter * 4 + 12_877, modifiedMs: 1_735_689_060_000 },
    },
    // As after Convert to Deploy, which wrote the deploy file.
    load: loadNote({ families: ['repvgg'], architecture: 'custom', input, output, format: 'pth', wholeModule: false }),
    family: 'RepVGG',
    architecture: `RepVGG (${opts.stages.join('-')} blocks)`,
    pass: opts.noParity ? null : !anyFail,
    parityError: opts.noParity ? 'onnxruntime could not load the train-form graph: unsupported operator "RepConvN".' : null,
    atol: 1e-5,
    rtol,
    toleranceBasis: opts.noParity ? null : 'as given',
    advice: opts.noParity
      ? 'Fix what the error names, then Check Parity again; the costs below do not need parity and are from the graphs.'
      : anyFail
        ? 'repvgg_a0_train.deploy.pth does not compute what the train form does.'
        : null,
    inputs: 8,
    shape: [1, 3, 224, 224],
    outputs: opts.noParity
      ? []
      : [{ name: 'logits', maxAbs: worst * 3.1, maxRel: worst, meanAbs: worst * 0.2, cosine: 1 - worst * worst, top1Agreement: anyFail ? 0.875 : 1 }],
    blocks,
    forms: {
      train: { latencyMs: 14.2, params: paramsBefore, macs: macsBefore, nodes: before.nodes.length, fileBytes: paramsBefore * 4 + 41_213 },
      deploy: { latencyMs: 7.9, params: paramsAfter, macs: macsAfter, nodes: after.nodes.length, fileBytes: paramsAfter * 4 + 12_877 },
    },
    before: layeredLayout(before.nodes, before.edges),
    after: layeredLayout(after.nodes, after.edges),
    createdAt: '2025-01-01T00:00:00.000Z',
  };
}

/** A RepVGG-A0-like chain of 22 blocks, two failing, three with outlier channels. */
export function smallSample(): ReportData {
  return sampleReport({ stages: [1, 2, 4, 14, 1], widths: [48, 48, 96, 192, 1280], failing: [5, 12], outliers: [3, 9, 17] });
}

/** At least 5,000 train-form nodes (about 620 blocks), for the responsiveness check. */
export function largeSample(): ReportData {
  return sampleReport({ stages: [1, 60, 200, 320, 60], widths: [64, 64, 128, 256, 256], seed: 7, failing: [10, 400], outliers: [3, 50, 333, 500] });
}

/** A 1→1-channel 3×3 block named `name`, with whatever else a test sets. */
export function plainBlock(name: string, fields: Partial<BlockReport> = {}): BlockReport {
  return {
    name,
    stage: 's',
    inChannels: 1,
    outChannels: 1,
    kernel: 3,
    stride: 1,
    strideInferred: false,
    groups: 1,
    branches: [],
    paramsBefore: 1,
    paramsAfter: 1,
    warnings: [],
    ...fields,
  };
}
