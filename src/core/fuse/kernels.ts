/**
 * The re-parameterization math, in float64: fold BN into a conv, centre small
 * kernels in k×k, write the identity as a kernel, sum. Shapes are [out, in/groups, k, k].
 */

export interface BnStats {
  gamma: Float64Array;
  beta: Float64Array;
  mean: Float64Array;
  var: Float64Array;
  eps: number;
}

export interface Kernel {
  weight: Float64Array;
  bias: Float64Array;
}

/** A 1×1 (or any smaller odd) kernel placed at the centre of a k×k one. */
export function padKernel(weight: Float64Array, shape: readonly number[], k: number): Float64Array {
  const [o, i, kh, kw] = shape;
  if (kh === k && kw === k) return weight;
  const out = new Float64Array(o * i * k * k);
  const dy = (k - kh) / 2;
  const dx = (k - kw) / 2;
  for (let a = 0; a < o * i; a++) {
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) out[a * k * k + (y + dy) * k + (x + dx)] = weight[a * kh * kw + y * kw + x];
    }
  }
  return out;
}

/**
 * The identity as a conv: output channel c reads input channel c, which in a grouped
 * conv is position c mod (in/groups) of its group's slice.
 */
export function identityKernel(channels: number, inPerGroup: number, k: number): Float64Array {
  const out = new Float64Array(channels * inPerGroup * k * k);
  const centre = Math.floor(k / 2) * k + Math.floor(k / 2);
  for (let c = 0; c < channels; c++) out[(c * inPerGroup + (c % inPerGroup)) * k * k + centre] = 1;
  return out;
}

/** W·γ/√(σ²+ε) per output channel, and β − μ·γ/√(σ²+ε) (+ the conv's own bias, scaled, if it has one). */
export function foldBn(weight: Float64Array, outChannels: number, bn: BnStats, convBias?: Float64Array): Kernel {
  const per = weight.length / outChannels;
  const fused = new Float64Array(weight.length);
  const bias = new Float64Array(outChannels);
  for (let c = 0; c < outChannels; c++) {
    const t = bn.gamma[c] / Math.sqrt(bn.var[c] + bn.eps);
    for (let j = 0; j < per; j++) fused[c * per + j] = weight[c * per + j] * t;
    bias[c] = bn.beta[c] + ((convBias?.[c] ?? 0) - bn.mean[c]) * t;
  }
  return { weight: fused, bias };
}

export function sumKernels(kernels: readonly Kernel[]): Kernel {
  const weight = new Float64Array(kernels[0].weight.length);
  const bias = new Float64Array(kernels[0].bias.length);
  for (const k of kernels) {
    for (let j = 0; j < weight.length; j++) weight[j] += k.weight[j];
    for (let j = 0; j < bias.length; j++) bias[j] += k.bias[j];
  }
  return { weight, bias };
}
