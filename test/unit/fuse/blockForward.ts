import type { Block, BnNames } from '../../../src/core/model/structure';
import { avgPool2d, batchNorm, conv2d } from './reference';

/**
 * What a train-form block computes before its activation, branch by branch in float64, read from
 * the block's own description: conv (+ its bias) then BN unless the branch has none, the identity
 * (its BN, or the input itself), an AvgPool (zero padding counted), the sum, and a BN after the sum.
 * Independent of src/core/fuse: no kernel is assembled here.
 */
export function blockForward(
  block: Block,
  tensors: ReadonlyMap<string, Float64Array>,
  x: Float64Array,
  hw: number,
  eps?: number,
): { y: Float64Array; shape: [number, number, number] } {
  const get = (n: string) => {
    const v = tensors.get(n);
    if (!v) throw new Error(`no tensor ${n}`);
    return v;
  };
  const bn = (v: Float64Array, names: BnNames) =>
    batchNorm(v, block.outChannels, { gamma: get(names.weight), beta: get(names.bias), mean: get(names.mean), var: get(names.var), eps: eps ?? names.eps });
  const stride = block.stride ?? 1;
  let sum: Float64Array | undefined;
  let shape: [number, number, number] = [0, 0, 0];
  for (const b of block.branches) {
    let y: Float64Array;
    if (b.role === 'identity') {
      if (stride !== 1) throw new Error('an identity needs stride 1');
      y = b.withoutBn ? Float64Array.from(x) : bn(x, b.bn!);
      shape = [block.outChannels, hw, hw];
    } else if (b.role === 'avgPool') {
      const r = avgPool2d(x, [block.inChannels, hw, hw], b.poolKernel!, stride, Math.floor(b.poolKernel! / 2));
      [y, shape] = [r.y, r.shape];
    } else {
      const k = b.weightShape![2];
      const r = conv2d(
        x,
        [block.inChannels, hw, hw],
        get(b.convWeight!),
        b.weightShape!,
        b.convBias ? get(b.convBias) : null,
        stride,
        Math.floor(k / 2),
        block.groups,
      );
      y = b.withoutBn ? r.y : bn(r.y, b.bn!);
      shape = r.shape;
    }
    sum = sum ? sum.map((v, i) => v + y[i]) : y;
  }
  return { y: block.postBn ? bn(sum!, block.postBn) : sum!, shape };
}

/** max |a − b| / max |a|. */
export function relMax(reference: Float64Array, other: ArrayLike<number>): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < reference.length; i++) {
    d = Math.max(d, Math.abs(reference[i] - other[i]));
    s = Math.max(s, Math.abs(reference[i]));
  }
  return d / s;
}
