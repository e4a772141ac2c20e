import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import type { ModelFile } from '../../../src/core/formats/modelFile';
import type { Tensor } from '../../../src/core/formats/tensor';

export const FIXTURES = path.resolve(__dirname, '../../fixtures');

export interface ExpectedTensor {
  name: string;
  dtype: string;
  shape: number[];
  sum: number;
  first: number[];
}

export interface ExpectedFile {
  format: string;
  metadata: Record<string, unknown>;
  tensors: ExpectedTensor[];
  size: number;
}

/** test/fixtures/expected.json, written by make_fixtures.py from what torch / onnx read. */
export const expected: { files: Record<string, ExpectedFile> } = JSON.parse(readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8'));

/**
 * Exactly rounded sum, as Python's math.fsum computes the expected sums: partial sums are kept
 * exact (Shewchuk), so the result does not depend on the order of additions.
 */
export function fsum(values: Iterable<number>): number {
  const partials: number[] = [];
  for (let x of values) {
    let i = 0;
    for (let y of partials) {
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[i++] = lo;
      x = hi;
    }
    partials.length = i;
    partials.push(x);
  }
  // Round the exact sum held in the partials once, as fsum does (including the half-way correction).
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n];
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  if (n > 0 && ((lo < 0 && partials[n - 1] < 0) || (lo > 0 && partials[n - 1] > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
}

/** Every tensor of `file` against expected.json: order, name, dtype, shape, exact sum and first values. */
export async function expectTensorsMatch(file: ModelFile, exp: ExpectedFile): Promise<void> {
  expect(file.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(exp.tensors.map((t) => [t.name, t.dtype, t.shape]));
  for (const [i, t] of file.tensors.entries()) {
    const values = await t.toFloat64();
    const e = exp.tensors[i];
    expect({ name: t.name, sum: fsum(values), first: Array.from(values.subarray(0, 6)) }).toEqual({ name: e.name, sum: e.sum, first: e.first });
    expect(await inPieces(t, [5, 1, 7]), t.name).toEqual(Buffer.from(await t.readBytes()));
  }
}

/** A tensor's bytes read through `Tensor.reader` in pieces of the given sizes, in turn, as a conversion streams it. */
export async function inPieces(t: Tensor, sizes: number[]): Promise<Buffer> {
  const reader = t.reader();
  const pieces: Uint8Array[] = [];
  for (let at = 0, i = 0; at < t.byteLength; i++) {
    // Kept as they are: reading the next piece must not change one already handed out.
    const piece = await reader.next(Math.min(sizes[i % sizes.length], t.byteLength - at));
    pieces.push(piece);
    at += piece.length;
  }
  await expect(reader.next(1)).rejects.toThrow(/runs past its/);
  return Buffer.concat(pieces);
}
