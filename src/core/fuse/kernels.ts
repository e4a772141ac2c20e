/**
 * The re-parameterization math. Every branch becomes a per-output-channel scale t and
 * shift b (BN folded: t = γ/√(σ²+ε), b = β + (conv bias − μ)·t); the fused kernel is then
 * built one output channel at a time in a float64 scratch row — small kernels centred in
 * k×k, the identity as a 1 at the centre of input channel c mod (in/groups), a p×p AvgPool
 * (zero padding counted) as 1/p² at each of its taps of that channel — and, where the block
 * has a BatchNorm after the sum that is folded, scaled by that BN's t last (its shift is
 * applied to the summed bias: b' = t·(b − μ) + β). Each row is then handed to a sink that
 * rounds it once. Memory stays at one row, whatever the block's size.
 */

export type Values = Float32Array | Float64Array;

export interface ConvTerm {
  /** The weight's tensor name, for messages. */
  name: string;
  weight: Values;
  kh: number;
  kw: number;
  scale: Float64Array;
}

export interface FusionTerms {
  outChannels: number;
  inPerGroup: number;
  k: number;
  convs: ConvTerm[];
  /** Scale of each identity branch (a bare identity has scale 1). */
  identities: Float64Array[];
  /** Window of each AvgPool branch (odd, no larger than k); 1/p² on each tap. */
  pools: number[];
  /** Per-channel scale of a post-sum BatchNorm folded into the kernel, applied to each row last (its shift is already in `bias`). */
  postScale?: Float64Array;
  /** Sum of every branch's shift. */
  bias: Float64Array;
}

export interface BnStats {
  gamma: Values;
  beta: Values;
  mean: Values;
  var: Values;
  eps: number;
}

/** t and b of a BN-folded branch; `convBias` is the branch conv's own bias, if any. */
export function foldBn(bn: BnStats, outChannels: number, convBias?: Values): { scale: Float64Array; shift: Float64Array } {
  const scale = new Float64Array(outChannels);
  const shift = new Float64Array(outChannels);
  for (let c = 0; c < outChannels; c++) {
    const t = bn.gamma[c] / Math.sqrt(bn.var[c] + bn.eps);
    scale[c] = t;
    shift[c] = bn.beta[c] + ((convBias?.[c] ?? 0) - bn.mean[c]) * t;
  }
  return { scale, shift };
}

/**
 * Calls `row(c, values)` with each output channel's fused kernel for c in [from, to), in float64,
 * reusing one buffer. Each conv term's `weight` holds just those channels' rows (all of them by default).
 */
export function forEachFusedRow(terms: FusionTerms, row: (c: number, values: Float64Array) => void, from = 0, to = terms.outChannels): void {
  const { inPerGroup, k } = terms;
  const kk = k * k;
  const per = inPerGroup * kk;
  const scratch = new Float64Array(per);
  const centre = Math.floor(k / 2) * k + Math.floor(k / 2);
  // A block's first term is nearly always its k×k conv: written into the row rather than added to zeros.
  const first = terms.convs[0]?.kh === k && terms.convs[0].kw === k ? terms.convs[0] : undefined;
  const rest = first ? terms.convs.slice(1) : terms.convs;
  for (let c = from; c < to; c++) {
    const r = c - from;
    if (first) setScaled(scratch, first.weight, r * per, per, first.scale[c]);
    else scratch.fill(0);
    for (const term of rest) {
      // The full-size and 1×1 kernels (nearly all of the work) get loops without index arithmetic.
      if (term.kh === k && term.kw === k) addScaled(scratch, term.weight, r * per, per, term.scale[c]);
      else if (term.kh === 1 && term.kw === 1) addCentres(scratch, term.weight, r * inPerGroup, inPerGroup, kk, centre, term.scale[c]);
      else addCentred(scratch, term, c, r, inPerGroup, k);
    }
    for (const scale of terms.identities) scratch[(c % inPerGroup) * kk + centre] += scale[c];
    for (const p of terms.pools) addPool(scratch, (c % inPerGroup) * kk, p, k);
    if (terms.postScale) {
      const t = terms.postScale[c];
      for (let j = 0; j < per; j++) scratch[j] *= t;
    }
    row(c, scratch);
  }
}

/** dst = 0 + src·t, without first writing the zeros: `+ 0` keeps the sum's sign of zero (−0 + 0 is +0). */
function setScaled(dst: Float64Array, src: Values, from: number, length: number, t: number): void {
  for (let j = 0; j < length; j++) dst[j] = src[from + j] * t + 0;
}

function addScaled(dst: Float64Array, src: Values, from: number, length: number, t: number): void {
  for (let j = 0; j < length; j++) dst[j] += src[from + j] * t;
}

function addCentres(dst: Float64Array, src: Values, from: number, inPerGroup: number, kk: number, centre: number, t: number): void {
  for (let i = 0; i < inPerGroup; i++) dst[i * kk + centre] += src[from + i] * t;
}

/** A p×p average (odd p ≤ k, zero padding counted, so every tap weighs 1/p²) centred in the k×k slot at `base`. */
function addPool(dst: Float64Array, base: number, p: number, k: number): void {
  const w = 1 / (p * p);
  const d = (k - p) / 2;
  for (let y = 0; y < p; y++) for (let x = 0; x < p; x++) dst[base + (y + d) * k + x + d] += w;
}

/** A kh×kw kernel (odd, no larger than k) of output channel c, row r of its weight, added at the centre of each k×k slot. */
function addCentred(dst: Float64Array, { weight, kh, kw, scale }: ConvTerm, c: number, r: number, inPerGroup: number, k: number): void {
  const kk = k * k;
  const t = scale[c];
  const dy = (k - kh) / 2;
  const dx = (k - kw) / 2;
  let src = r * inPerGroup * kh * kw;
  for (let i = 0; i < inPerGroup; i++) {
    for (let y = 0; y < kh; y++) {
      const dst0 = i * kk + (y + dy) * k + dx;
      for (let x = 0; x < kw; x++) dst[dst0 + x] += weight[src++] * t;
    }
  }
}
