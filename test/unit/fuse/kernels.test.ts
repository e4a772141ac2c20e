import { describe, expect, it } from 'vitest';
import { forEachFusedRow, type ConvTerm, type FusionTerms } from '../../../src/core/fuse/kernels';
import { mulberry32 } from '../../../src/core/parity/prng';

/**
 * forEachFusedRow against the definition: each row starts as zeros and every term is added in
 * order, in float64. The kernel writes its first k×k term instead of adding it to zeros; the rows
 * must still be the same bits, the sign of every zero included (a weight of 0 times a negative
 * scale is −0, which 0 + (−0) makes +0).
 */
function random(seed: number) {
  const next = mulberry32(seed);
  // A fifth of the values exactly zero, so that signed zeros occur.
  return (n: number) => Float64Array.from({ length: n }, () => (next() % 5 === 0 ? 0 : next() / 2 ** 31 - 1));
}

function reference(terms: FusionTerms): Float64Array[] {
  const { outChannels, inPerGroup, k } = terms;
  const kk = k * k;
  const rows: Float64Array[] = [];
  for (let c = 0; c < outChannels; c++) {
    const row = new Float64Array(inPerGroup * kk);
    for (const { weight, kh, kw, scale } of terms.convs) {
      const dy = (k - kh) / 2;
      const dx = (k - kw) / 2;
      for (let i = 0; i < inPerGroup; i++) {
        for (let y = 0; y < kh; y++)
          for (let x = 0; x < kw; x++) row[i * kk + (y + dy) * k + x + dx] += weight[((c * inPerGroup + i) * kh + y) * kw + x] * scale[c];
      }
    }
    const centre = Math.floor(k / 2) * (k + 1);
    for (const scale of terms.identities) row[(c % inPerGroup) * kk + centre] += scale[c];
    for (const p of terms.pools) {
      const d = (k - p) / 2;
      for (let y = 0; y < p; y++) for (let x = 0; x < p; x++) row[(c % inPerGroup) * kk + (y + d) * k + x + d] += 1 / (p * p);
    }
    if (terms.postScale) for (let j = 0; j < row.length; j++) row[j] *= terms.postScale[c];
    rows.push(row);
  }
  return rows;
}

function terms(
  seed: number,
  shape: { out: number; inPerGroup: number; k: number },
  kernels: number[],
  extra: { identity?: boolean; pool?: number; postScale?: boolean } = {},
): FusionTerms {
  const r = random(seed);
  const { out, inPerGroup, k } = shape;
  const convs: ConvTerm[] = kernels.map((kh, i) => ({ name: `conv${i}`, weight: r(out * inPerGroup * kh * kh), kh, kw: kh, scale: r(out) }));
  return {
    outChannels: out,
    inPerGroup,
    k,
    convs,
    identities: extra.identity ? [r(out)] : [],
    pools: extra.pool ? [extra.pool] : [],
    ...(extra.postScale ? { postScale: r(out) } : {}),
    bias: new Float64Array(out),
  };
}

const sameBits = (a: Float64Array, b: Float64Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

describe('forEachFusedRow gives the definition’s rows, bit for bit', () => {
  it.each([
    ['3×3 + 1×1 + identity (RepVGG)', terms(1, { out: 6, inPerGroup: 6, k: 3 }, [3, 1], { identity: true })],
    ['1×1 first, then 3×3', terms(2, { out: 5, inPerGroup: 4, k: 3 }, [1, 3])],
    ['3×3 alone', terms(3, { out: 4, inPerGroup: 3, k: 3 }, [3])],
    [
      'several k×k branches, post-sum scale (MobileOne, QARepVGG)',
      terms(4, { out: 4, inPerGroup: 4, k: 3 }, [3, 3, 3, 1], { identity: true, postScale: true }),
    ],
    ['5×5 with a 3×3 and an AvgPool', terms(5, { out: 3, inPerGroup: 3, k: 5 }, [5, 3], { pool: 3 })],
    ['identity only', terms(6, { out: 4, inPerGroup: 4, k: 3 }, [], { identity: true })],
  ])('%s', (_, t) => {
    const want = reference(t);
    const zeros = want.flatMap((row) => [...row]).filter((v) => v === 0);
    let rows = 0;
    forEachFusedRow(t, (c, row) => {
      expect(sameBits(row, want[c]), `row ${c}`).toBe(true);
      rows++;
    });
    expect(rows).toBe(t.outChannels);
    // Every case has zeros (padding and zero weights), so the sign of zero is really checked.
    expect(zeros.length).toBeGreaterThan(0);
  });
});
