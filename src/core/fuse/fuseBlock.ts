import { ReplensError } from '../formats/errors';
import { DTYPE_BYTES, type DType } from '../formats/tensor';
import { encodeFromFloat64 } from '../formats/encode';
import { familyById } from '../model/families';
import type { Block, BnNames, Branch } from '../model/structure';
import { foldBn, forEachFusedRow, type FusionTerms, type Values } from './kernels';

/** A block that cannot be fused exactly; names the block and says why. */
export class FusionError extends ReplensError {
  constructor(
    readonly block: string,
    reason: string,
  ) {
    super(block, reason, false);
    this.name = 'FusionError';
  }
}

/** Told of each block's one conv kernel ([out, in/groups, k, k]) where a graph gets it (the report's kernel statistics). */
export type BlockKernelListener = (block: Block, kernel: ArrayLike<number>, outChannels: number) => void;

/** Exact values of a tensor: float32 for float32/16/bf16 files, float64 otherwise. */
export type LoadTensor = (name: string) => Promise<Values>;

export interface FusedBlock {
  weight: Float64Array;
  bias: Float64Array;
  /** [out, in/groups, k, k] */
  shape: [number, number, number, number];
  /** The BN eps each branch was folded with (per branch module; the post-sum BN's module when it was folded). */
  eps: Record<string, number>;
  /** What became of the block's BatchNorm after the sum (Block.postBn), when it has one. */
  postBn?: PostBnChoice;
}

/** A fused block already rounded to its output dtype, as little-endian bytes. */
export interface EncodedFusedBlock {
  weight: Uint8Array;
  bias: Uint8Array;
  shape: [number, number, number, number];
  eps: Record<string, number>;
  postBn?: PostBnChoice;
}

/**
 * 'fold': the fused conv computes the whole block, its BatchNorm after the sum included
 * (W' = t·W, b' = t·(b − μ) + β with that BN's t = γ/√(σ²+ε)): what a graph or an ONNX file
 * needs, where the block becomes one Conv. 'keep': the fused conv is the sum of the branches
 * before that BN, and the BN stays a module of its own — what YOLOv6's QARepVGG
 * switch_to_deploy writes (rbr_reparam + bn), so a deploy checkpoint loads into its deploy model.
 */
export type PostBnChoice = 'fold' | 'keep';

export interface FuseOptions {
  /** Replaces every BN eps (the file's and the family default). */
  eps?: number;
  /**
   * What to do with a block's BatchNorm after the sum of its branches (Block.postBn, QARepVGG).
   * Required for such a block — fusion refuses to guess — and ignored for every other block.
   */
  postBn?: PostBnChoice;
}

function checkFinite(block: string, name: string, values: Values): void {
  for (let j = 0; j < values.length; j++) {
    if (!Number.isFinite(values[j])) throw new FusionError(block, `${name} contains ${values[j]} at index ${j}`);
  }
}

async function loadSized(block: Block, load: LoadTensor, name: string, length: number): Promise<Values> {
  const values = await load(name);
  if (values.length !== length) throw new FusionError(block.name, `${name} has ${values.length} values, expected ${length}`);
  return values;
}

async function loadChecked(block: Block, load: LoadTensor, name: string, length: number): Promise<Values> {
  const values = await loadSized(block, load, name, length);
  checkFinite(block.name, name, values);
  return values;
}

/**
 * Conv weights, most of a model's bytes, are not scanned when loaded: a non-finite element
 * always makes its fused values non-finite (NaN·t, ∞·t and ∞·0 never are), so the fused
 * rows are checked instead and the weight to blame is looked up only when one fails.
 */
function blameNonFiniteWeight(block: Block, terms: FusionTerms, fused: number, range: string, firstRow = 0): FusionError {
  for (const { name, weight, kh, kw } of terms.convs) {
    // The weights may hold only the rows from `firstRow` on (a fusion in pieces): the index is the tensor's.
    const skipped = firstRow * terms.inPerGroup * kh * kw;
    for (let j = 0; j < weight.length; j++) {
      if (!Number.isFinite(weight[j])) return new FusionError(block.name, `${name} contains ${weight[j]} at index ${skipped + j}`);
    }
  }
  return new FusionError(block.name, `fused weight value ${fused} ${range}`);
}

/** A BN's statistics, loaded and checked, with the eps it is folded with. */
async function loadBn(block: Block, names: BnNames, load: LoadTensor, options: FuseOptions) {
  const out = block.outChannels;
  const [gamma, beta, mean, variance] = await Promise.all([names.weight, names.bias, names.mean, names.var].map((n) => loadChecked(block, load, n, out)));
  const e = options.eps ?? names.eps;
  for (let c = 0; c < out; c++) {
    if (!(variance[c] + e > 0)) throw new FusionError(block.name, `${names.var}[${c}] = ${variance[c]}: running_var + eps must be positive`);
  }
  return { gamma, beta, mean, var: variance, eps: e };
}

async function branchShift(block: Block, branch: Branch, load: LoadTensor, options: FuseOptions, eps: Record<string, number>) {
  const out = block.outChannels;
  const convBias = branch.convBias ? await loadChecked(block, load, branch.convBias, out) : undefined;
  // A branch without BN (folded by an exporter, a bare conv or a bare identity) is already weight + bias.
  if (branch.withoutBn) return { scale: new Float64Array(out).fill(1), shift: Float64Array.from(convBias ?? new Float64Array(out)) };
  if (!branch.bn) throw new FusionError(block.name, `${branch.module} has no complete BatchNorm`);
  const bn = await loadBn(block, branch.bn, load, options);
  eps[branch.module] = bn.eps;
  return foldBn(bn, out, convBias);
}

function checkFusible(block: Block): void {
  if (block.form !== 'train') throw new FusionError(block.name, 'is already in deploy form');
  const k = block.kernel;
  if (k % 2 === 0) throw new FusionError(block.name, `kernel ${k}×${k} is even: a smaller kernel cannot be centred in it`);
  if (block.dilation !== 1) throw new FusionError(block.name, `dilation ${block.dilation}: branches with different receptive fields cannot be summed`);
  if (block.padding !== Math.floor(k / 2))
    throw new FusionError(block.name, `padding ${block.padding} with kernel ${k}: the 1×1 and identity branches would not align with the k×k branch`);
  if (!Number.isInteger(block.groups) || block.groups < 1 || block.inChannels % block.groups !== 0)
    throw new FusionError(block.name, `groups ${block.groups} does not divide in_channels ${block.inChannels}`);
  const inPerGroup = block.inChannels / block.groups;
  for (const b of block.branches) {
    if (!b.weightShape) continue;
    const [o, i, kh, kw] = b.weightShape;
    if (o !== block.outChannels || i !== inPerGroup)
      throw new FusionError(block.name, `${b.module} weight [${b.weightShape.join(', ')}] does not match ${block.outChannels}×${inPerGroup}`);
    if (kh !== kw || kh % 2 === 0 || kh > k) throw new FusionError(block.name, `${b.module} kernel ${kh}×${kw} cannot be centred in ${k}×${k}`);
  }
  if (block.branches.some((b) => b.role === 'identity') && block.inChannels !== block.outChannels) {
    throw new FusionError(block.name, `identity branch with in_channels ${block.inChannels} ≠ out_channels ${block.outChannels}`);
  }
  for (const b of block.branches.filter((x) => x.role === 'avgPool')) {
    const p = b.poolKernel;
    if (p === undefined) throw new FusionError(block.name, `${b.module}: the AvgPool window is not known (see the block's warnings)`);
    if (!Number.isInteger(p) || p < 1 || p % 2 === 0 || p > k)
      throw new FusionError(block.name, `${b.module}: a ${p}×${p} AvgPool cannot be centred in ${k}×${k}`);
    if (block.inChannels !== block.outChannels)
      throw new FusionError(block.name, `AvgPool branch with in_channels ${block.inChannels} ≠ out_channels ${block.outChannels}`);
  }
  // A checkpoint block whose family has a BN after the sum, but not its tensors, would fuse to a different function.
  if (!block.postBn && !block.onnx && familyById(block.family).postBn) {
    throw new FusionError(block.name, `has no complete BatchNorm after the sum of its branches (${familyById(block.family).postBn!.module})`);
  }
  if (block.branches.length === 0) throw new FusionError(block.name, 'has no branches to fuse');
  if (!block.branches.some((b) => b.role === 'dense')) throw new FusionError(block.name, 'has no k×k branch: its main conv weight is missing');
}

const NO_ROWS = new Float32Array(0);

/** Loads and checks every branch of a train-form block into per-channel terms; without `kernels`, the conv weights are left empty to be read in pieces. */
async function fusionTerms(
  block: Block,
  load: LoadTensor,
  options: FuseOptions,
  kernels = true,
): Promise<{ terms: FusionTerms; eps: Record<string, number>; postBn?: PostBnChoice }> {
  checkFusible(block);
  const k = block.kernel;
  const inPerGroup = block.inChannels / block.groups;
  const eps: Record<string, number> = {};
  const terms: FusionTerms = { outChannels: block.outChannels, inPerGroup, k, convs: [], identities: [], pools: [], bias: new Float64Array(block.outChannels) };
  if (block.postBn && options.postBn === undefined) {
    throw new FusionError(
      block.name,
      'has a BatchNorm after the sum of its branches, and the caller did not say whether to fold it into the conv (internal error)',
    );
  }
  for (const branch of block.branches) {
    if (branch.role === 'avgPool') {
      // A parameter-free average: no scale, no shift.
      terms.pools.push(branch.poolKernel!);
      continue;
    }
    const { scale, shift } = await branchShift(block, branch, load, options, eps);
    for (let c = 0; c < shift.length; c++) terms.bias[c] += shift[c];
    if (branch.role === 'identity') {
      terms.identities.push(scale);
    } else {
      const [o, i, kh, kw] = branch.weightShape!;
      const weight = kernels ? await loadSized(block, load, branch.convWeight!, o * i * kh * kw) : NO_ROWS;
      terms.convs.push({ name: branch.convWeight!, weight, kh, kw, scale });
    }
  }
  if (block.postBn && options.postBn === 'fold') {
    if (block.se)
      throw new FusionError(
        block.name,
        'has squeeze-excitation between the sum of its branches and the BatchNorm after it: that BN cannot be folded into the conv',
      );
    // Folded last, on the sum: y = t·(Σ − μ) + β, so W' = t·W and b' = t·(b − μ) + β.
    const bn = await loadBn(block, block.postBn, load, options);
    const { scale } = foldBn(bn, block.outChannels);
    for (let c = 0; c < block.outChannels; c++) terms.bias[c] = scale[c] * (terms.bias[c] - bn.mean[c]) + bn.beta[c];
    terms.postScale = scale;
    eps[block.postBn.weight.replace(/\.weight$/, '')] = bn.eps;
  }
  return { terms, eps, postBn: block.postBn ? options.postBn : undefined };
}

/** One train-form block → the equivalent single k×k conv with bias, in float64. */
export async function fuseBlock(block: Block, load: LoadTensor, options: FuseOptions = {}): Promise<FusedBlock> {
  const { terms, eps, postBn } = await fusionTerms(block, load, options);
  const per = terms.inPerGroup * terms.k * terms.k;
  const weight = new Float64Array(terms.outChannels * per);
  forEachFusedRow(terms, (c, row) => {
    for (let j = 0; j < per; j++) if (!Number.isFinite(row[j])) throw blameNonFiniteWeight(block, terms, row[j], 'is not finite');
    weight.set(row, c * per);
  });
  return { weight, bias: terms.bias, shape: [terms.outChannels, terms.inPerGroup, terms.k, terms.k], eps, ...(postBn ? { postBn } : {}) };
}

const FLOAT_MAX: Partial<Record<DType, number>> = {
  float64: Number.MAX_VALUE,
  float32: 3.4028234663852886e38,
  float16: 65504,
  bfloat16: 3.3895313892515355e38,
};

/** Where the fused weight's bytes go. */
export interface EncodeTarget {
  /** Bytes for the fused weight; every one of them is written. */
  allocate(length: number): Uint8Array;
  /**
   * Whether an array `load` returned is the caller's to discard. A float32 k×k branch's own
   * array may then receive the fused kernel (row c is written only after every branch's
   * row c was read), so a block-sized buffer is neither allocated nor first touched.
   */
  mayOverwrite?(values: Values): boolean;
  /** Takes back a conv weight window a fusion in pieces is done with (fuseBlockInPieces). */
  release?(values: Values): void;
}

const FRESH: EncodeTarget = { allocate: (length) => new Uint8Array(length) };

/** The same fusion, rounded once per element straight into `dtype` bytes (what the writers need). */
export async function fuseBlockEncoded(block: Block, load: LoadTensor, dtype: DType, options: FuseOptions = {}, target = FRESH): Promise<EncodedFusedBlock> {
  const max = encodableMax(block, dtype);
  const { terms, eps, postBn } = await fusionTerms(block, load, options);
  const bias = encodeBias(terms, dtype, max, block);
  return {
    weight: encodeRows(block, terms, dtype, max, target, 0, terms.outChannels),
    bias,
    shape: [terms.outChannels, terms.inPerGroup, terms.k, terms.k],
    eps,
    ...(postBn ? { postBn } : {}),
  };
}

/** Reads a conv weight front to back, `count` values at a time. */
export type KernelReader = (name: string) => { next(count: number): Promise<Values> };

/** A fused block whose kernel comes in pieces. */
export interface EncodedFusedPieces extends Omit<EncodedFusedBlock, 'weight'> {
  /** The fused kernel's bytes in order, whole output channels at a time; each piece is the caller's. */
  weight: AsyncGenerator<Uint8Array>;
}

/**
 * The encoded fusion with the conv weights read and fused about `pieceBytes` at a time (whole
 * output channels): memory stays at a few pieces, which a pool reuses, whatever the block's size.
 * The BN statistics and biases, one value per channel, are loaded whole first. Each conv weight
 * window is handed to `target.release` once fused, unless it received the fused rows.
 */
export async function fuseBlockInPieces(
  block: Block,
  load: LoadTensor,
  kernels: KernelReader,
  dtype: DType,
  pieceBytes: number,
  options: FuseOptions = {},
  target = FRESH,
): Promise<EncodedFusedPieces> {
  const max = encodableMax(block, dtype);
  const { terms, eps, postBn } = await fusionTerms(block, load, options, false);
  const bias = encodeBias(terms, dtype, max, block);
  const rows = Math.max(1, Math.floor(pieceBytes / (terms.inPerGroup * terms.k * terms.k * DTYPE_BYTES[dtype])));
  const readers = terms.convs.map((t) => kernels(t.name));
  async function* pieces(): AsyncGenerator<Uint8Array> {
    for (let from = 0; from < terms.outChannels; from += rows) {
      const to = Math.min(terms.outChannels, from + rows);
      const windows = await Promise.all(readers.map((r, i) => r.next((to - from) * terms.inPerGroup * terms.convs[i].kh * terms.convs[i].kw)));
      windows.forEach((w, i) => (terms.convs[i].weight = w));
      const piece = encodeRows(block, terms, dtype, max, target, from, to);
      for (const w of windows) if (w.buffer !== piece.buffer) target.release?.(w);
      yield piece;
    }
  }
  return { weight: pieces(), bias, shape: [terms.outChannels, terms.inPerGroup, terms.k, terms.k], eps, ...(postBn ? { postBn } : {}) };
}

function encodableMax(block: Block, dtype: DType): number {
  const max = FLOAT_MAX[dtype];
  if (max === undefined) throw new FusionError(block.name, `its weights are ${dtype}: only floating-point blocks can be fused`);
  return max;
}

// Finite inputs can still fuse past the output type's range; Infinity in a deploy file is never what was meant.
const outOfRange = (dtype: DType) => `does not fit in ${dtype}`;

function encodeBias(terms: FusionTerms, dtype: DType, max: number, block: Block): Uint8Array {
  for (const b of terms.bias) if (!(Math.abs(b) <= max)) throw new FusionError(block.name, `fused bias value ${b} ${outOfRange(dtype)}`);
  return encodeFromFloat64(dtype, terms.bias);
}

/** Output channels [from, to) of the fused kernel in `dtype` bytes; the conv terms hold just those channels' rows. */
function encodeRows(block: Block, terms: FusionTerms, dtype: DType, max: number, target: EncodeTarget, from: number, to: number): Uint8Array {
  const blame = (v: number) => blameNonFiniteWeight(block, terms, v, outOfRange(dtype), from);
  const per = terms.inPerGroup * terms.k * terms.k;
  const rowBytes = per * DTYPE_BYTES[dtype];
  const size = (to - from) * rowBytes;
  const reusable =
    dtype === 'float32'
      ? terms.convs.find((t) => t.kh === terms.k && t.kw === terms.k && t.weight instanceof Float32Array && target.mayOverwrite?.(t.weight))
      : undefined;
  const weight = reusable ? new Uint8Array(reusable.weight.buffer, reusable.weight.byteOffset, size) : target.allocate(size);
  if (dtype === 'float32') {
    const view = new Float32Array(weight.buffer, weight.byteOffset, weight.length / 4);
    // One plain loop checks and rounds each value: TypedArray#set between float64 and float32 arrays is several times slower in V8.
    forEachFusedRow(
      terms,
      (c, row) => {
        const base = (c - from) * per;
        for (let j = 0; j < per; j++) {
          const v = row[j];
          if (!(Math.abs(v) <= max)) throw blame(v);
          view[base + j] = v;
        }
      },
      from,
      to,
    );
  } else {
    forEachFusedRow(
      terms,
      (c, row) => {
        for (let j = 0; j < per; j++) if (!(Math.abs(row[j]) <= max)) throw blame(row[j]);
        weight.set(encodeFromFloat64(dtype, row), (c - from) * rowBytes);
      },
      from,
      to,
    );
  }
  return weight;
}
