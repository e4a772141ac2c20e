import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ParityError } from '../../../src/core/parity/errors';
import { parseNpy, readNpy } from '../../../src/core/parity/npy';
import { npyBytes } from './npyWriter';

function withHeader(header: string, data: Uint8Array, version = 1): Uint8Array {
  const pre = version === 1 ? 10 : 12;
  let text = header;
  while ((pre + text.length + 1) % 64 !== 0) text += ' ';
  text += '\n';
  const out = new Uint8Array(pre + text.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, text.length, true);
  else view.setUint32(8, text.length, true);
  out.set(new TextEncoder().encode(text), pre);
  out.set(data, pre + text.length);
  return out;
}

describe('parseNpy', () => {
  it('reads float32 arrays in C order', () => {
    const data = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const { shape, data: back } = parseNpy(npyBytes([1, 2, 3], data), 'x.npy');
    expect(shape).toEqual([1, 2, 3]);
    expect(Array.from(back)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads a file (a Buffer from the pool, not at offset 0 of its memory)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'replens-npy-'));
    try {
      const file = path.join(dir, 'x.npy');
      await writeFile(file, npyBytes([3], Float32Array.from([0.25, -1, 3])));
      expect(Array.from((await readNpy(file)).data)).toEqual([0.25, -1, 3]);
      await expect(readNpy(path.join(dir, 'missing.npy'))).rejects.toThrow(/missing\.npy: could not be read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads float64 arrays as float32, and format version 2 headers', () => {
    const data = new Uint8Array(Float64Array.from([0.5, -2]).buffer);
    const { shape, data: back } = parseNpy(withHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", data, 2), 'x.npy');
    expect(shape).toEqual([2]);
    expect(back).toBeInstanceOf(Float32Array);
    expect(Array.from(back)).toEqual([0.5, -2]);
  });

  it.each([
    ['not a .npy', new Uint8Array(20), /no \\x93NUMPY magic/],
    ['Fortran order', withHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", new Uint8Array(4)), /Fortran order/],
    ['big-endian', withHeader("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4)), /dtype '>f4' is not supported/],
    ['int64', withHeader("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8)), /dtype '<i8'/],
    ['short data', withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", new Uint8Array(12)), /needs 16 bytes of data, the file has 12/],
  ])('refuses %s with the reason, naming the file', (_label, bytes, reason) => {
    expect(() => parseNpy(bytes, 'in.npy')).toThrow(ParityError);
    expect(() => parseNpy(bytes, 'in.npy')).toThrow(reason);
    expect(() => parseNpy(bytes, 'in.npy')).toThrow(/^in\.npy: /);
  });
});
