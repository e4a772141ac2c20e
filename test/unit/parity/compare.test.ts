import { describe, expect, it } from 'vitest';
import { Comparison } from '../../../src/core/parity/compare';

const tol = { atol: 1e-4, rtol: 1e-3 };
const f = (...v: number[]) => Float32Array.from(v);

function compare(ref: Float32Array, cand: Float32Array, dims = [ref.length], tolerance = tol) {
  const c = new Comparison(tolerance);
  c.add(ref, cand, dims, dims);
  return c.result();
}

describe('Comparison', () => {
  it('passes an element within atol + rtol·|reference| and fails one past it', () => {
    expect(compare(f(0), f(1e-4)).pass).toBe(true);
    expect(compare(f(0), f(1.2e-4)).pass).toBe(false);
    expect(compare(f(100), f(100.0625)).pass).toBe(true); // 0.0625 <= 1e-4 + 0.1
    expect(compare(f(100), f(100.125)).pass).toBe(false);
  });

  it('scales atol with the RMS of the reference output, so rounding noise in large outputs passes', () => {
    // A near-zero element of a large output: its error comes from summing values of ~1000.
    const large = compare(f(1000, -1000, 0.5), f(1000, -1000, 0.51));
    expect(large.scale).toBeCloseTo(Math.sqrt(2e6 / 3), 2);
    expect(large.pass).toBe(true);
    // The same error in an output of unit scale is a real difference.
    expect(compare(f(1, -1, 0.5), f(1, -1, 0.51)).pass).toBe(false);
    // And the scale does not hide an error in the large values themselves.
    expect(compare(f(1000, -1000, 0.5), f(1002, -1000, 0.5)).pass).toBe(false);
  });

  it('measures maxRel against |reference|, floored at atol/rtol', () => {
    const large = compare(f(8), f(8.0078125));
    expect(large.maxRel).toBeCloseTo(0.0078125 / 8, 12);
    const small = compare(f(0.001), f(0.0015));
    // |b| = 0.001 is below atol/rtol = 0.1, so the floor is the denominator.
    expect(small.maxRel).toBeCloseTo(0.0005 / 0.1, 6);
    expect(small.maxAbs).toBeCloseTo(0.0005, 6);
  });

  it('accumulates over samples: max, mean and cosine over all elements', () => {
    const c = new Comparison(tol);
    c.add(f(1, 0), f(1, 0), [2], [2]);
    c.add(f(0, 2), f(0, 2.5), [2], [2]);
    const m = c.result();
    expect(m.elements).toBe(4);
    expect(m.maxAbs).toBeCloseTo(0.5, 6);
    expect(m.meanAbs).toBeCloseTo(0.5 / 4, 6);
    expect(m.cosine).toBeCloseTo((1 + 5) / (Math.sqrt(5) * Math.sqrt(1 + 6.25)), 9);
    expect(m.mismatched).toBe(1);
    expect(m.pass).toBe(false);
  });

  it.each([
    ['NaN in the candidate', f(1, 2), f(1, NaN)],
    ['NaN on both sides', f(NaN, 2), f(NaN, 2)],
    ['+Inf on both sides', f(Infinity, 2), f(Infinity, 2)],
    ['-Inf in the reference', f(-Infinity, 2), f(0, 2)],
  ])('fails on %s, never passes, and says how many', (_label, ref, cand) => {
    const m = compare(ref, cand);
    expect(m.pass).toBe(false);
    expect(m.nonFinite.reference + m.nonFinite.candidate).toBeGreaterThan(0);
    expect(m.maxAbs).toBeNaN();
    expect(m.cosine).toBeNaN();
    expect(JSON.parse(JSON.stringify(m)).maxAbs).toBeNull();
  });

  it('reports top-1 agreement for [batch, classes] outputs only', () => {
    const logits = compare(f(1, 2, 3, 9, 1, 1), f(1, 2, 3, 1, 9, 1), [2, 3]);
    expect(logits.top1Agreement).toBe(0.5);
    expect(compare(f(1, 2, 3, 4), f(1, 2, 3, 4), [1, 4, 1, 1]).top1Agreement).toBeNull();
  });

  it('fails outputs whose shapes differ instead of comparing them element by element', () => {
    const c = new Comparison(tol);
    c.add(f(1, 2), f(1, 2), [1, 2], [2, 1]);
    const m = c.result();
    expect(m.pass).toBe(false);
    expect(m.error).toBe('shapes differ: reference [1, 2], candidate [2, 1]');
  });

  it('treats two all-zero outputs as identical (cosine 1)', () => {
    const m = compare(f(0, 0), f(0, 0));
    expect(m.cosine).toBe(1);
    expect(m.pass).toBe(true);
  });
});
