import { describe, expect, it } from 'vitest';
import { NormalRandom } from '../../../src/core/parity/prng';

describe('NormalRandom', () => {
  it('repeats for a seed and differs between seeds', () => {
    expect(Array.from(new NormalRandom(7).fill(16))).toEqual(Array.from(new NormalRandom(7).fill(16)));
    expect(Array.from(new NormalRandom(7).fill(16))).not.toEqual(Array.from(new NormalRandom(8).fill(16)));
  });

  it('gives finite standard-normal samples', () => {
    const x = new NormalRandom(1).fill(100_000);
    const mean = x.reduce((a, b) => a + b, 0) / x.length;
    const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
    expect(x.every(Number.isFinite)).toBe(true);
    // Standard errors are ~0.003 (mean) and ~0.0045 (variance): these bounds are > 5 of them.
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(variance - 1)).toBeLessThan(0.03);
  });
});
