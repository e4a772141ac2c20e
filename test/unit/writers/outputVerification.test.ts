import { mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { convertFile, type OutputFormat } from '../../../src/core/convert/convert';
import { PIECE_BYTES } from '../../../src/core/formats/byteReader';
import { FileByteSource } from '../../../src/core/formats/byteSource';
import { encodeFromFloat64 } from '../../../src/core/formats/encode';
import { ModelFormatError } from '../../../src/core/formats/errors';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { ByteSink, OutputError, writeAtomically } from '../../../src/core/writers/atomicFile';
import { ReportStore } from '../../../src/core/report/reportStore';
import { writeTorchCheckpoint } from '../../../src/core/writers/torchWriter';
import { ZipArchive } from '../../../src/core/formats/zip';
import { ZipWriter, type ZipRecord } from '../../../src/core/writers/zipWriter';
import { seededRandom } from '../fuse/reference';
import { upstreamRepvggMetas } from '../model/syntheticStateDicts';

/**
 * What is published is what was produced. Real models have convolutions between 256 KiB and
 * several MiB, where a buffer handed back to the pool too early once corrupted every conversion
 * while the tiny fixtures stayed green; these tests use such sizes.
 */

const MODELS = path.join(__dirname, '..', '..', 'fixtures', 'models');
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-verify-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

/**
 * An upstream-style RepVGG train checkpoint with random weights and BN statistics whose 3×3
 * kernels are 54 KiB (32→48), 216 KiB, 576 KiB (128→128), 1.1 MiB, 2.25 MiB (256→256) and
 * 4.5 MiB (256→512): every size class of the pool and the sink.
 */
async function midSizeCheckpoint(name = 'mid_train.pth'): Promise<{ file: string; values: Map<string, Float64Array> }> {
  const rand = seededRandom(7);
  const values = new Map<string, Float64Array>();
  const metas = upstreamRepvggMetas({ blocks: [1, 2, 2, 1], widths: [32, 48, 128, 256, 512], classes: 10 });
  const tensors = metas.map(({ name: tensorName, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const isCount = tensorName.endsWith('num_batches_tracked');
    // Variances and BN scales in [0.5, 2), everything else in [-1, 1).
    const positive = tensorName.endsWith('running_var') || /(bn|identity)\.weight$/.test(tensorName);
    const v = Float64Array.from({ length: n }, () => (isCount ? 100 : positive ? 0.5 + 1.5 * rand() : 2 * rand() - 1));
    // Stored as float32, so the reference fuses the values the file really holds.
    const stored = isCount ? v : Float64Array.from(new Float32Array(v));
    values.set(tensorName, stored);
    const bytes = isCount ? new Uint8Array(BigInt64Array.from(stored, BigInt).buffer) : encodeFromFloat64('float32', stored);
    return { name: tensorName, dtype: isCount ? ('int64' as const) : ('float32' as const), shape, bytes: async () => bytes };
  });
  const file = path.join(dir, name);
  await writeAtomically(file, (sink) => writeTorchCheckpoint(sink, tensors));
  return { file, values };
}

/** Upstream RepVGG's fusion in float64, written out plainly: the oracle for the fused tensors. */
function referenceFusion(values: Map<string, Float64Array>, block: string, eps = 1e-5): { weight: Float64Array; bias: Float64Array } {
  const dense = values.get(`${block}.rbr_dense.conv.weight`)!;
  const one = values.get(`${block}.rbr_1x1.conv.weight`)!;
  const out = values.get(`${block}.rbr_dense.bn.weight`)!.length;
  const inC = dense.length / out / 9;
  const weight = new Float64Array(dense.length);
  const bias = new Float64Array(out);
  const fold = (bn: string) => {
    const g = values.get(`${bn}.weight`)!;
    const b = values.get(`${bn}.bias`)!;
    const m = values.get(`${bn}.running_mean`)!;
    const v = values.get(`${bn}.running_var`)!;
    const scale = Float64Array.from(g, (gi, i) => gi / Math.sqrt(v[i] + eps));
    for (let o = 0; o < out; o++) bias[o] += b[o] - m[o] * scale[o];
    return scale;
  };
  const sDense = fold(`${block}.rbr_dense.bn`);
  const sOne = fold(`${block}.rbr_1x1.bn`);
  const identity = values.has(`${block}.rbr_identity.weight`) ? fold(`${block}.rbr_identity`) : undefined;
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inC; i++) {
      const at = (o * inC + i) * 9;
      for (let k = 0; k < 9; k++) weight[at + k] = dense[at + k] * sDense[o];
      weight[at + 4] += one[o * inC + i] * sOne[o];
      if (identity && i === o) weight[at + 4] += identity[o];
    }
  }
  return { weight, bias };
}

const BLOCKS = ['stage0', 'stage1.0', 'stage2.0', 'stage2.1', 'stage3.0', 'stage3.1', 'stage4.0'];

/** Largest |a − b| / max |b| over the tensor. */
function relativeError(a: Float64Array, b: Float64Array): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return worst / scale;
}

async function expectFusedAsReference(output: string, values: Map<string, Float64Array>): Promise<void> {
  const model = await openModelFile(output);
  try {
    const byName = new Map(model.tensors.map((t) => [t.name, t]));
    for (const block of BLOCKS) {
      const want = referenceFusion(values, block);
      expect(relativeError(await byName.get(`${block}.rbr_reparam.weight`)!.toFloat64(), want.weight), `${block} weight`).toBeLessThan(1e-6);
      expect(relativeError(await byName.get(`${block}.rbr_reparam.bias`)!.toFloat64(), want.bias), `${block} bias`).toBeLessThan(1e-6);
    }
    // Passed-through tensors are the input's, bit for bit.
    expect(Array.from(await byName.get('linear.weight')!.toFloat64())).toEqual(Array.from(values.get('linear.weight')!));
  } finally {
    await model.close();
  }
}

describe('ByteSink', () => {
  it("holds none of the caller's bytes once write() has resolved", async () => {
    const file = path.join(dir, 'sink.bin');
    const handle = await open(file, 'w');
    const sink = new ByteSink(handle);
    // A header-sized chunk and a tensor-sized one, each scribbled over right after it was written.
    const chunks = [new Uint8Array(100).fill(1), new Uint8Array(300 * 1024).fill(2), new Uint8Array(10).fill(3)];
    for (const chunk of chunks) {
      await sink.write(chunk);
      chunk.fill(0xff);
    }
    await sink.flush();
    await handle.close();
    const bytes = await readFile(file);
    expect(bytes.length).toBe(sink.position);
    expect([bytes[0], bytes[99], bytes[100], bytes[100 + 300 * 1024 - 1], bytes.at(-1)]).toEqual([1, 1, 2, 2, 3]);
    expect(bytes.includes(0xff)).toBe(false);
  });
});

describe('the tests run with released buffers poisoned', () => {
  it('has REPLENS_POISON_RELEASED_BUFFERS=1, so a read of released memory shows as NaN', () => {
    expect(process.env.REPLENS_POISON_RELEASED_BUFFERS).toBe('1');
  });
});

describe('conversions at real tensor sizes', () => {
  it.each<OutputFormat>(['pth', 'safetensors'])('→ %s: every fused tensor equals a float64 fusion, read back from the published file', async (format) => {
    const { file, values } = await midSizeCheckpoint();
    const result = await convertFile(file, { format, output: path.join(dir, `out.${format}`) });
    expect(result.blocksFused).toBe(BLOCKS.length);
    await expectFusedAsReference(result.output, values);
    expect(result.verifySeconds).toBeGreaterThan(0);
  });
});

/**
 * A test double of the sink that corrupts one byte of the `nth` chunk of at least `minBytes` on
 * its way to the file, after every checksum of the bytes was taken: what a reused buffer did.
 */
function corruptOneByte(minBytes: number, nth = 1): void {
  const write = ByteSink.prototype.write;
  let seen = 0;
  vi.spyOn(ByteSink.prototype, 'write').mockImplementation(async function (this: ByteSink, bytes: Uint8Array) {
    if (bytes.length >= minBytes && ++seen === nth) {
      const copy = new Uint8Array(bytes);
      copy[copy.length >> 1] ^= 0x10;
      return write.call(this, copy);
    }
    return write.call(this, bytes);
  });
}

async function expectUnverifiedAndNothingLeft(run: Promise<unknown>, output: string, detail: RegExp): Promise<void> {
  const error = await run.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(OutputError);
  expect((error as OutputError).code).toBe('unverified');
  const message = (error as Error).message;
  expect(message.startsWith(`${output}: internal error: the finished file did not read back as it was produced (`)).toBe(true);
  expect(message).toMatch(detail);
  expect(message).toMatch(/; nothing was written\. This is a bug in RepLens/);
  const left = await readdir(dir);
  expect(left.filter((n) => n === path.basename(output) || n.endsWith('.replens-tmp'))).toEqual([]);
}

describe('a sink that corrupts one byte', () => {
  it.each<[OutputFormat, RegExp]>([
    ['pth', /CRC mismatch in 'archive\/data\/\d+'/],
    ['safetensors', /the bytes of '[\w.]+' differ from those produced/],
  ])('→ %s: the conversion fails with an internal error and publishes nothing', async (format, detail) => {
    const { file } = await midSizeCheckpoint();
    corruptOneByte(256 * 1024, 3);
    const output = path.join(dir, `out.${format}`);
    await expectUnverifiedAndNothingLeft(convertFile(file, { format, output }), output, detail);
  });

  it('→ pth, with the record CRC taken from the corrupted byte: the reader accepts the record, the check against the produced bytes does not', async () => {
    const { file } = await midSizeCheckpoint();
    // One byte of a large record is corrupted on its way to the file, and the record's CRC is taken from the bytes as written.
    const write = ByteSink.prototype.write;
    let seen = 0;
    const begin = ZipWriter.prototype.begin;
    const end = ZipWriter.prototype.end;
    let asWritten: number | undefined;
    vi.spyOn(ZipWriter.prototype, 'begin').mockImplementation(async function (this: ZipWriter, ...args: Parameters<ZipWriter['begin']>) {
      const record = await begin.apply(this, args);
      asWritten = 0;
      return record;
    });
    vi.spyOn(ByteSink.prototype, 'write').mockImplementation(async function (this: ByteSink, bytes: Uint8Array) {
      let out = bytes;
      if (bytes.length >= 256 * 1024 && ++seen === 3) {
        out = new Uint8Array(bytes);
        out[out.length >> 1] ^= 0x10;
      }
      if (asWritten !== undefined) asWritten = crc32(out, asWritten);
      return write.call(this, out);
    });
    vi.spyOn(ZipWriter.prototype, 'end').mockImplementation(async function (this: ZipWriter, record: ZipRecord) {
      const crc = asWritten! >>> 0;
      asWritten = undefined;
      return end.call(this, record, crc);
    });
    const output = path.join(dir, 'out.pth');
    await expectUnverifiedAndNothingLeft(convertFile(file, { output }), output, /the bytes of '[\w.]+' differ from those produced/);
  });

  it('ONNX → ONNX: fails the same way', async () => {
    const output = path.join(dir, 'out.onnx');
    corruptOneByte(1);
    await expectUnverifiedAndNothingLeft(convertFile(path.join(MODELS, 'repvgg_tiny_train.onnx'), { output }), output, /its bytes differ from those produced/);
  });

  it('checkpoint → ONNX: fails the same way', async () => {
    const output = path.join(dir, 'out.onnx');
    corruptOneByte(1);
    await expectUnverifiedAndNothingLeft(
      convertFile(path.join(MODELS, 'repvgg_tiny_train.pth'), { output, format: 'onnx' }),
      output,
      /its bytes differ from those produced/,
    );
  });

  it('a stored report is not kept either', async () => {
    corruptOneByte(1);
    const store = new ReportStore(dir);
    await expect(store.save({ input: 'a.pth', output: 'b.pth' } as never)).rejects.toMatchObject({ code: 'unverified' });
    expect((await readdir(dir)).filter((n) => !n.startsWith('.'))).toEqual([]);
  });
});

describe('an input record corrupted in its first piece, found at its last', () => {
  it('fails the conversion with the CRC mismatch, naming the input, and leaves no output', async () => {
    const { file } = await midSizeCheckpoint();
    // The largest record (stage 4's k×k weight, several pieces): one byte of its first piece flipped, its CRC left as it was.
    const zip = await ZipArchive.open(await FileByteSource.open(file));
    const largest = zip.entries.reduce((a, b) => (b.size > a.size ? b : a));
    const at = (await zip.dataOffset(largest)) + 100;
    await zip.src.close();
    expect(largest.size).toBeGreaterThan(2 * PIECE_BYTES);
    const handle = await open(file, 'r+');
    const byte = new Uint8Array(1);
    await handle.read(byte, 0, 1, at);
    byte[0] ^= 0x04;
    await handle.write(byte, 0, 1, at);
    await handle.close();
    const output = path.join(dir, 'out.pth');
    const error = await convertFile(file, { output }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFormatError);
    expect((error as Error).message).toBe(`${file}: the file is corrupted: CRC mismatch in '${largest.name}'`);
    expect((await readdir(dir)).filter((n) => n !== path.basename(file))).toEqual([]);
  });
});

describe('ByteSink.patch', () => {
  it('rewrites bytes still in its batch and bytes already in the file', async () => {
    const file = path.join(dir, 'patched.bin');
    await writeAtomically(file, async (sink) => {
      await sink.write(new Uint8Array([1, 2, 3, 4]));
      await sink.write(new Uint8Array(128 * 1024).fill(7)); // written out, and the batch before it
      await sink.write(new Uint8Array([5, 6, 7, 8]));
      await sink.patch(1, new Uint8Array([0xaa, 0xbb])); // in the file
      await sink.patch(128 * 1024 + 6, new Uint8Array([0xcc])); // in the batch
      await expect(sink.patch(128 * 1024 + 8, new Uint8Array([1]))).rejects.toThrow('past the');
    });
    const bytes = await readFile(file);
    expect([...bytes.subarray(0, 4)]).toEqual([1, 0xaa, 0xbb, 4]);
    expect([...bytes.subarray(128 * 1024 + 4)]).toEqual([5, 6, 0xcc, 8]);
    expect(bytes.length).toBe(128 * 1024 + 8);
  });
});
