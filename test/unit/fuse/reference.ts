/** Plain float64 reference implementations used to check fusion against the train-form computation. */

export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Direct grouped 2-D convolution, NCHW with N = 1, zero padding. */
export function conv2d(
  x: Float64Array,
  [c, h, w]: [number, number, number],
  weight: Float64Array,
  [o, ipg, kh, kw]: readonly number[],
  bias: Float64Array | null,
  stride: number,
  pad: number,
  groups: number,
): { y: Float64Array; shape: [number, number, number] } {
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
  const y = new Float64Array(o * oh * ow);
  const opg = o / groups;
  for (let oc = 0; oc < o; oc++) {
    const g = Math.floor(oc / opg);
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let acc = bias ? bias[oc] : 0;
        for (let ic = 0; ic < ipg; ic++) {
          const cin = g * ipg + ic;
          if (cin >= c) throw new Error('bad channels');
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * stride + ky - pad;
            if (iy < 0 || iy >= h) continue;
            for (let kx = 0; kx < kw; kx++) {
              const ix = ox * stride + kx - pad;
              if (ix < 0 || ix >= w) continue;
              acc += x[(cin * h + iy) * w + ix] * weight[((oc * ipg + ic) * kh + ky) * kw + kx];
            }
          }
        }
        y[(oc * oh + oy) * ow + ox] = acc;
      }
    }
  }
  return { y, shape: [o, oh, ow] };
}

export function batchNorm(
  x: Float64Array,
  channels: number,
  bn: { gamma: Float64Array; beta: Float64Array; mean: Float64Array; var: Float64Array; eps: number },
): Float64Array {
  const per = x.length / channels;
  const y = new Float64Array(x.length);
  for (let c = 0; c < channels; c++) {
    const s = 1 / Math.sqrt(bn.var[c] + bn.eps);
    for (let j = 0; j < per; j++) y[c * per + j] = (x[c * per + j] - bn.mean[c]) * s * bn.gamma[c] + bn.beta[c];
  }
  return y;
}

/** AvgPool2d as PyTorch computes it by default: zero padding counted (count_include_pad=True), floor mode. */
export function avgPool2d(
  x: Float64Array,
  [c, h, w]: [number, number, number],
  k: number,
  stride: number,
  pad: number,
): { y: Float64Array; shape: [number, number, number] } {
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
  const y = new Float64Array(c * oh * ow);
  for (let ch = 0; ch < c; ch++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let acc = 0;
        for (let ky = 0; ky < k; ky++) {
          const iy = oy * stride + ky - pad;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < k; kx++) {
            const ix = ox * stride + kx - pad;
            if (ix >= 0 && ix < w) acc += x[(ch * h + iy) * w + ix];
          }
        }
        y[(ch * oh + oy) * ow + ox] = acc / (k * k);
      }
    }
  }
  return { y, shape: [c, oh, ow] };
}
