import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FileByteSource, MemoryByteSource, type ByteSource } from '../../../src/core/formats/byteSource';
import { ModelFormatError } from '../../../src/core/formats/errors';
import { readSafetensors } from '../../../src/core/formats/safetensors';
import { expected, expectTensorsMatch, FIXTURES } from './fixtureValues';

const NAME = 'model.safetensors';

/** A safetensors file from a header object (serialised as given) and the data section. */
function build(header: unknown, data: Uint8Array = new Uint8Array(0), headerText = JSON.stringify(header)): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Records every read so tests can check that only the header is read up front. */
class CountingSource implements ByteSource {
  readonly reads: [number, number][] = [];
  constructor(private readonly inner: ByteSource) {}
  get name() {
    return this.inner.name;
  }
  get size() {
    return this.inner.size;
  }
  read(offset: number, length: number) {
    this.reads.push([offset, length]);
    return this.inner.read(offset, length);
  }
  close() {
    return this.inner.close();
  }
}

async function formatError(bytes: Uint8Array): Promise<ModelFormatError> {
  const err = await readSafetensors(new MemoryByteSource(NAME, bytes)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelFormatError);
  expect((err as ModelFormatError).file).toBe(NAME);
  return err as ModelFormatError;
}

const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);

describe('readSafetensors on the committed fixtures', () => {
  const files = Object.entries(expected.files).filter(([, e]) => e.format === 'safetensors');

  it('covers the fixtures the brief lists', () => {
    expect(files.map(([n]) => n)).toEqual(
      expect.arrayContaining(['models/dtypes.safetensors', 'models/repvgg_tiny_train.safetensors', 'models/timm_repvgg_train.safetensors']),
    );
  });

  for (const [name, exp] of files) {
    it(`reads ${name} exactly as torch does`, async () => {
      const file = await readSafetensors(await FileByteSource.open(path.join(FIXTURES, name)));
      try {
        expect(file.format).toBe('safetensors');
        expect(file.metadata).toEqual(exp.metadata);
        expect(file.warnings).toEqual([]);
        await expectTensorsMatch(file, exp);
      } finally {
        await file.close();
      }
    });
  }

  it('reads every dtype of dtypes.safetensors', async () => {
    const file = await readSafetensors(await FileByteSource.open(path.join(FIXTURES, 'models/dtypes.safetensors')));
    expect(new Set(file.tensors.map((t) => t.dtype))).toEqual(
      new Set(['float64', 'float32', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool']),
    );
    await file.close();
  });

  it('truncating dtypes.safetensors anywhere gives a ModelFormatError', async () => {
    const bytes = readFileSync(path.join(FIXTURES, 'models/dtypes.safetensors'));
    for (let cut = 0; cut < bytes.length; cut++) await formatError(bytes.subarray(0, cut));
  });

  it('a flipped byte anywhere in the header never escapes as another kind of error', async () => {
    const bytes = new Uint8Array(readFileSync(path.join(FIXTURES, 'models/dtypes.safetensors')));
    const headerEnd = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
    let failures = 0;
    for (let i = 0; i < headerEnd; i++) {
      for (const mask of [0x01, 0x20, 0x80]) {
        const copy = bytes.slice();
        copy[i] ^= mask;
        try {
          const file = await readSafetensors(new MemoryByteSource(NAME, copy));
          for (const t of file.tensors) await t.toFloat64();
        } catch (e) {
          expect(e).toBeInstanceOf(ModelFormatError);
          failures++;
        }
      }
    }
    // Most flips (length bytes, braces, quotes, digits of offsets) must be caught, not read as something else.
    expect(failures).toBeGreaterThan(headerEnd);
  });
});

describe('readSafetensors', () => {
  it('lists tensors in the order of their data, whatever the header order', async () => {
    const header = {
      c: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      z: { dtype: 'F32', shape: [0], data_offsets: [12, 12] },
      __metadata__: { format: 'pt' },
    };
    const file = await readSafetensors(new MemoryByteSource(NAME, build(header, f32(1, 2, 3))));
    expect(file.tensors.map((t) => t.name)).toEqual(['a', 'c', 'z']);
    expect(Array.from(await file.tensors[1].toFloat64())).toEqual([3]);
    expect(file.metadata).toEqual({ format: 'pt' });
  });

  it('reads only the header until a tensor is asked for, then only its range', async () => {
    const bytes = build({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, f32(1, 2, 3));
    const src = new CountingSource(new MemoryByteSource(NAME, bytes));
    const file = await readSafetensors(src);
    const headerEnd = bytes.length - 12;
    expect(src.reads.every(([o, l]) => o + l <= headerEnd)).toBe(true);
    src.reads.length = 0;
    expect(Array.from(await file.tensors[1].toFloat64())).toEqual([3]);
    expect(src.reads).toEqual([[headerEnd + 8, 4]]);
  });

  it('accepts a file with no tensors', async () => {
    const file = await readSafetensors(new MemoryByteSource(NAME, build({})));
    expect(file.tensors).toEqual([]);
  });

  it('rejects header lengths beyond 100 MB or beyond the file before reading them', async () => {
    const bytes = build({});
    const src = new CountingSource(new MemoryByteSource(NAME, bytes));
    for (const claimed of [2n ** 64n - 1n, 200n * 1024n * 1024n]) {
      new DataView(bytes.buffer).setBigUint64(0, claimed, true);
      expect((await formatError(bytes)).reason).toMatch(/more than the 104857600 allowed/);
    }
    new DataView(bytes.buffer).setBigUint64(0, 3n, true);
    expect((await formatError(bytes)).reason).toBe(
      'the file is truncated: it ends at 10 B, inside the header of a safetensors file (header claims 3 bytes, the file has 2 after the length); re-save or re-download it',
    );
    await readSafetensors(src).catch(() => undefined);
    expect(src.reads.every(([, l]) => l <= bytes.length)).toBe(true);
  });

  it('rejects files shorter than the length prefix', async () => {
    expect((await formatError(new Uint8Array(5))).reason).toBe(
      'the file is truncated: it ends at 5 B, inside a safetensors file (shorter than its 8-byte header length); re-save or re-download it',
    );
  });

  it('rejects headers that are not a JSON object of valid UTF-8', async () => {
    expect((await formatError(build(null, undefined, '{"a": '))).reason).toMatch(/not valid JSON/);
    expect((await formatError(build([]))).reason).toMatch(/not a JSON object/);
    const bad = build(null, undefined, '{"\xff": 1}');
    bad.set([0xff], 11);
    expect((await formatError(bad)).reason).toMatch(/not valid JSON/);
  });

  it('names the unknown dtype and the tensor', async () => {
    const err = await formatError(build({ x: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)));
    expect(err.reason).toBe('unknown dtype F8_E4M3 for tensor x');
    expect((await formatError(build({ x: { dtype: 'toString', shape: [], data_offsets: [0, 0] } }))).reason).toBe('unknown dtype toString for tensor x');
  });

  it('rejects malformed entries', async () => {
    const cases: [unknown, RegExp][] = [
      [{ x: 5 }, /tensor 'x': header entry is not an object/],
      [{ x: { shape: [1], data_offsets: [0, 4] } }, /dtype is missing/],
      [{ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, /shape must be/],
      [{ x: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, /shape must be/],
      [{ x: { dtype: 'F32', shape: ['1'], data_offsets: [0, 4] } }, /shape must be/],
      [{ x: { dtype: 'F32', shape: [1], data_offsets: [0] } }, /data_offsets must be/],
      [{ x: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, /end before they begin/],
      [{ x: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, /hold 4 bytes, shape \[2\] of F32 needs 8/],
      [{ x: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 4] } }, /too large/],
      [{ __metadata__: { a: 1 } }, /__metadata__ must map strings to strings/],
    ];
    for (const [header, pattern] of cases) expect((await formatError(build(header, new Uint8Array(4)))).reason).toMatch(pattern);
  });

  it('rejects overlapping, gapped, out-of-range and unclaimed data', async () => {
    const data = new Uint8Array(8);
    const t = (b: number, e: number) => ({ dtype: 'U8', shape: [e - b], data_offsets: [b, e] });
    expect((await formatError(build({ a: t(0, 6), b: t(4, 8) }, data))).reason).toMatch(
      /tensor 'b': data_offsets \[4, 8\] overlap the previous tensor, which ends at 6/,
    );
    expect((await formatError(build({ a: t(0, 2), b: t(4, 8) }, data))).reason).toMatch(/leaving bytes 2..4 unused/);
    expect((await formatError(build({ a: t(0, 8), b: t(8, 12) }, data))).reason).toMatch(
      /^the file is truncated: it ends at \d+ B, inside the tensor data of a safetensors file \(tensor 'b' needs data bytes up to 12, the file has 8\); re-save or re-download it$/,
    );
    expect((await formatError(build({ a: t(0, 6) }, data))).reason).toMatch(/2 bytes after the last tensor belong to no tensor/);
  });
});
