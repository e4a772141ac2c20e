import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FileByteSource, MemoryByteSource, type ByteSource } from '../../../src/core/formats/byteSource';
import { ModelFormatError } from '../../../src/core/formats/errors';
import type { ModelFile } from '../../../src/core/formats/modelFile';
import { PyDict, PyGlobal, PyObject, unpickle, type PyValue } from '../../../src/core/formats/pickle';
import { TorchStorage, TorchStorageType, TorchTensorRef, parseStoragePid, torchGlobals } from '../../../src/core/formats/torchObjects';
import { isSuspiciousGlobal, summarize, unwrapCheckpoint, WeightsSlotError } from '../../../src/core/formats/unwrap';
import { readTorchLegacy } from '../../../src/core/formats/torchLegacy';
import { readTorchZip } from '../../../src/core/formats/torchZip';
import { ZipArchive } from '../../../src/core/formats/zip';
import { writeZip, type ZipContent } from '../../../scripts/fuzz/zipCodec';
import { fsum, inPieces } from './fixtureValues';

const FIXTURES = join(__dirname, '../../fixtures');

interface ExpectedTensor {
  name: string;
  dtype: string;
  shape: number[];
  sum: number;
  first: number[];
}
interface ExpectedFile {
  format: string;
  container: string;
  unwrap_key: string | null;
  metadata: Record<string, unknown>;
  tensors: ExpectedTensor[];
  modules?: unknown[];
}
const EXPECTED = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as {
  marker_path: string;
  files: Record<string, ExpectedFile>;
  invalid: Record<string, { detected: string }>;
  hostile: Record<string, { detected: string }>;
};
const TORCH_FILES = Object.entries(EXPECTED.files).filter(([, f]) => f.format === 'torch-zip' || f.format === 'torch-legacy');

function reader(format: string): (src: ByteSource) => Promise<ModelFile> {
  return format === 'torch-legacy' ? readTorchLegacy : readTorchZip;
}

async function open(rel: string, format: string): Promise<ModelFile> {
  const src = await FileByteSource.open(join(FIXTURES, rel));
  try {
    return await reader(format)(src);
  } catch (e) {
    await src.close();
    throw e;
  }
}

async function fromBytes(bytes: Uint8Array, format = 'torch-zip', name = 'mem.pth'): Promise<ModelFile> {
  return reader(format)(new MemoryByteSource(name, bytes));
}

/** Every tensor's values; each is read in uneven pieces too (as a conversion streams it), which must give the same bytes. */
async function values(m: ModelFile): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const t of m.tensors) {
    out[t.name] = Array.from(await t.toFloat64());
    expect(await inPieces(t, [5, 1, 7]), t.name).toEqual(Buffer.from(await t.readBytes()));
  }
  return out;
}

/** Loads every tensor; the error (if any) it ends with. */
async function readEverything(bytes: Uint8Array, format: string): Promise<unknown> {
  try {
    const m = await fromBytes(bytes, format, 'bad.pth');
    for (const t of m.tensors) await t.readBytes();
    return undefined;
  } catch (e) {
    return e;
  }
}

function isPlainJson(v: unknown): boolean {
  return !JSON.stringify(v).includes('"__tensor__"') && !JSON.stringify(v).includes('"__type__"');
}

describe('torch fixtures read exactly as torch reads them', () => {
  it('has the torch fixtures', () => {
    expect(TORCH_FILES.length).toBeGreaterThanOrEqual(14);
  });

  for (const [rel, exp] of TORCH_FILES) {
    it(rel, async () => {
      const m = await open(rel, exp.format);
      try {
        expect(m.format).toBe(exp.format);
        expect(m.path).toBe(join(FIXTURES, rel));
        expect(m.warnings).toEqual([]);
        expect(m.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(exp.tensors.map((t) => [t.name, t.dtype, t.shape]));
        for (const [i, t] of m.tensors.entries()) {
          const v = await t.toFloat64();
          expect(fsum(v), t.name).toBe(exp.tensors[i].sum);
          expect(Array.from(v.subarray(0, 6)), t.name).toEqual(exp.tensors[i].first);
        }
        expect(m.metadata.stateDictKey).toBe(exp.unwrap_key ?? undefined);
        for (const [k, v] of Object.entries(exp.metadata)) {
          expect(m.metadata, k).toHaveProperty([k]);
          if (isPlainJson(v)) expect(m.metadata[k], k).toEqual(v);
        }
        if (exp.modules) expect(m.modules).toEqual(exp.modules);
        else expect(m.modules).toBeUndefined();
      } finally {
        await m.close();
      }
    });
  }

  it('summarises the optimizer and reports the DataParallel prefix of a training checkpoint', async () => {
    const m = await open('models/repvgg_tiny_wrapped.pth.tar', 'torch-zip');
    expect(m.metadata.optimizer).toBe('{…} (optimizer state, 1 entries)');
    expect(m.metadata.prefix).toBe('module.');
    expect(m.tensors[0].name.startsWith('module.')).toBe(true);
    await m.close();
  });

  it('lists module classes as pickle globals of a full model', async () => {
    const m = await open('models/yolov7_repconv_train.pt', 'torch-zip');
    expect(m.metadata.pickleGlobals).toEqual(expect.arrayContaining(['replens_fixture_models.RepConv', 'torch.nn.modules.conv.Conv2d']));
    await m.close();
  });

  it('reads legacy and zip files of the same state dict to identical values', async () => {
    const zip = await open('models/repvgg_tiny_train.pth', 'torch-zip');
    const legacy = await open('models/repvgg_tiny_train_legacy.pth', 'torch-legacy');
    expect(await values(legacy)).toEqual(await values(zip));
    await zip.close();
    await legacy.close();
  });

  it('closes the source', async () => {
    let closed = false;
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'models/dtypes.pth')));
    const src = new MemoryByteSource('mem.pth', bytes);
    src.close = async () => {
      closed = true;
    };
    const m = await readTorchZip(src);
    await m.close();
    expect(closed).toBe(true);
  });
});

/** Re-packs a torch zip through the test zip writer, letting a test change entries on the way. */
async function repack(rel: string, edit: (e: ZipContent, itemSizes: Map<string, number>) => ZipContent | undefined, zip64 = false): Promise<Uint8Array> {
  const src = await FileByteSource.open(join(FIXTURES, rel));
  try {
    const zip = await ZipArchive.open(src);
    const pkl = zip.entries.find((e) => e.name.endsWith('/data.pkl'))!;
    const itemSizes = new Map<string, number>();
    unpickle(await zip.read(pkl), 0, {
      file: rel,
      resolveGlobal: torchGlobals(rel),
      persistentLoad: (pid: PyValue) => {
        const { type, key, numel } = parseStoragePid(rel, pid);
        itemSizes.set(key, type.itemSize);
        return new TorchStorage(key, type, numel, false, async () => new Uint8Array(0));
      },
    });
    const entries: ZipContent[] = [];
    for (const e of zip.entries) {
      const edited = edit({ name: e.name, data: (await zip.read(e)).slice() }, itemSizes);
      if (edited) entries.push(edited);
    }
    return writeZip(entries, { zip64 });
  } finally {
    await src.close();
  }
}

describe('torch zip variants', () => {
  const rel = 'models/dtypes.pth';
  const reference = async () => {
    const m = await open(rel, 'torch-zip');
    const v = await values(m);
    await m.close();
    return v;
  };

  it('reads deflated entries, ZIP64 records and any archive folder name', async () => {
    const expected = await reference();
    const deflated = await repack(rel, (e) => ({ ...e, method: 8 }));
    expect(await values(await fromBytes(deflated))).toEqual(expected);
    const zip64 = await repack(rel, (e) => e, true);
    expect(await values(await fromBytes(zip64))).toEqual(expected);
    const renamed = await repack(rel, (e) => ({ ...e, name: e.name.replace(/^dtypes\//, 'some.other-name/') }));
    expect(await values(await fromBytes(renamed))).toEqual(expected);
  });

  it('byte-swaps storages of a big-endian archive', async () => {
    const expected = await reference();
    const big = await repack(rel, (e, itemSizes) => {
      const key = /\/data\/(\w+)$/.exec(e.name)?.[1];
      const size = key === undefined ? 1 : itemSizes.get(key)!;
      const data = e.data.slice();
      for (let i = 0; i < data.length; i += size) data.subarray(i, i + size).reverse();
      return { ...e, data };
    });
    const archive = await ZipArchive.open(new MemoryByteSource('b', big));
    const entries: ZipContent[] = [];
    for (const e of archive.entries) entries.push({ name: e.name, data: await archive.read(e) });
    entries.push({ name: 'dtypes/byteorder', data: new TextEncoder().encode('big') });
    expect(await values(await fromBytes(writeZip(entries)))).toEqual(expected);
    // Without the byteorder record the swapped bytes are taken as little-endian: the values change.
    expect(await values(await fromBytes(big))).not.toEqual(expected);
  });

  it('rejects an unknown byte order, a storage shorter than declared and a missing storage', async () => {
    const odd = await repack(rel, (e) => e);
    const archive = await ZipArchive.open(new MemoryByteSource('b', odd));
    const entries: ZipContent[] = [];
    for (const e of archive.entries) entries.push({ name: e.name, data: await archive.read(e) });
    await expect(fromBytes(writeZip([...entries, { name: 'dtypes/byteorder', data: new TextEncoder().encode('middle') }]))).rejects.toThrow(
      /unknown byteorder 'middle'/,
    );
    const short = await repack(rel, (e) => (e.name === 'dtypes/data/0' ? { ...e, data: e.data.subarray(1) } : e));
    await expect(fromBytes(short)).rejects.toThrow(/storage '0' shorter than declared/);
    const missing = await repack(rel, (e) => (e.name === 'dtypes/data/1' ? undefined : e));
    await expect(fromBytes(missing)).rejects.toThrow(/storage '1' has no data\/1 entry/);
    const noPickle = await repack(rel, (e) => (e.name.endsWith('data.pkl') ? undefined : e));
    await expect(fromBytes(noPickle)).rejects.toThrow(/zip archive without data.pkl/);
  });
});

interface HandTensor {
  name: string;
  type: string;
  key: string;
  numel: number;
  offset: number;
  size: number[];
  stride: number[];
  /** Raw pickle text appended to the persistent id: legacy files add view metadata. */
  pidTail?: string;
}

/** A data.pkl for {name: tensor} built by hand: ('storage', type, key, 'cpu', numel) + _rebuild_tensor_v2. */
function tensorPickle(tensors: HandTensor[]): Uint8Array {
  const parts: number[] = [];
  const text = (s: string) => {
    for (let i = 0; i < s.length; i++) parts.push(s.charCodeAt(i));
  };
  const int = (n: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, n, true);
    parts.push(0x4a, ...b);
  };
  const long = (n: number) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, BigInt(n), true);
    parts.push(0x8a, 8, ...b);
  };
  text('\x80\x02}(');
  for (const t of tensors) {
    text(`V${t.name}\nctorch._utils\n_rebuild_tensor_v2\n((Vstorage\nctorch\n${t.type}\nV${t.key}\nVcpu\n`);
    long(t.numel);
    text(`${t.pidTail ?? ''}tQ`);
    int(t.offset);
    text('(');
    t.size.forEach(int);
    text('t(');
    t.stride.forEach(int);
    text('t\x89ccollections\nOrderedDict\n)RtR');
  }
  text('u.');
  return Uint8Array.from(parts);
}

function storageZip(pickle: Uint8Array, storages: Record<string, Uint8Array>): Uint8Array {
  return writeZip([
    { name: 'hand/data.pkl', data: pickle },
    ...Object.entries(storages).map(([k, data]) => ({ name: `hand/data/${k}`, data })),
    { name: 'hand/version', data: new TextEncoder().encode('3\n') },
  ]);
}

const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);

describe('tensor views by hand', () => {
  it('gathers strided views with a storage offset and reads shared storages once each', async () => {
    const storage = f32(0, 1, 2, 3, 4, 5, 6, 7);
    const pkl = tensorPickle([
      { name: 'whole', type: 'FloatStorage', key: '0', numel: 8, offset: 0, size: [2, 4], stride: [4, 1] },
      { name: 'cols', type: 'FloatStorage', key: '0', numel: 8, offset: 1, size: [2, 2], stride: [1, 2] },
      { name: 'broadcast', type: 'FloatStorage', key: '0', numel: 8, offset: 3, size: [3, 2], stride: [0, 1] },
      { name: 'tail', type: 'FloatStorage', key: '0', numel: 8, offset: 6, size: [2], stride: [1] },
    ]);
    const m = await fromBytes(storageZip(pkl, { '0': storage }));
    expect(await values(m)).toEqual({
      whole: [0, 1, 2, 3, 4, 5, 6, 7],
      cols: [1, 3, 2, 4],
      broadcast: [3, 4, 3, 4, 3, 4],
      tail: [6, 7],
    });
  });

  it('names the CRC-32 a read has checked only for a tensor that reads its whole zip record', async () => {
    const storage = f32(0, 1, 2, 3, 4, 5, 6, 7);
    const pkl = tensorPickle([
      { name: 'whole', type: 'FloatStorage', key: '0', numel: 8, offset: 0, size: [2, 4], stride: [4, 1] },
      { name: 'head', type: 'FloatStorage', key: '0', numel: 8, offset: 0, size: [2], stride: [1] },
      { name: 'tail', type: 'FloatStorage', key: '0', numel: 8, offset: 6, size: [2], stride: [1] },
      { name: 'transposed', type: 'FloatStorage', key: '0', numel: 8, offset: 0, size: [4, 2], stride: [1, 4] },
    ]);
    const m = await fromBytes(storageZip(pkl, { '0': storage }));
    const byName = Object.fromEntries(m.tensors.map((t) => [t.name, t.checkedCrc32]));
    expect(byName).toEqual({ whole: crc32(storage) >>> 0, head: undefined, tail: undefined, transposed: undefined });
    const legacy = await open('models/repvgg_tiny_train_legacy.pth', 'torch-legacy');
    expect(legacy.tensors.every((t) => t.checkedCrc32 === undefined)).toBe(true);
    await legacy.close();
  });

  it('rejects views that leave their storage, and storages larger than the file', async () => {
    const outside = tensorPickle([{ name: 'w', type: 'FloatStorage', key: '0', numel: 4, offset: 1, size: [2, 2], stride: [2, 1] }]);
    await expect(fromBytes(storageZip(outside, { '0': f32(1, 2, 3, 4) }))).rejects.toThrow(
      /tensor \[2,2\] at offset 1 reaches element 4 of storage '0' with 4 elements/,
    );
    const huge = tensorPickle([{ name: 'w', type: 'FloatStorage', key: '0', numel: 100 * 2 ** 30, offset: 0, size: [4], stride: [1] }]);
    const before = process.memoryUsage().arrayBuffers;
    await expect(fromBytes(storageZip(huge, { '0': f32(1, 2, 3, 4) }))).rejects.toThrow(
      /storage '0' shorter than declared: 16 bytes for 107374182400 FloatStorage elements/,
    );
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 2 ** 20);
    const negative = tensorPickle([{ name: 'w', type: 'FloatStorage', key: '0', numel: 4, offset: 0, size: [2], stride: [-1] }]);
    await expect(fromBytes(storageZip(negative, { '0': f32(1, 2, 3, 4) }))).rejects.toThrow(/tensor stride contains -1/);
    const mixed = tensorPickle([
      { name: 'a', type: 'FloatStorage', key: '0', numel: 4, offset: 0, size: [4], stride: [1] },
      { name: 'b', type: 'IntStorage', key: '0', numel: 4, offset: 0, size: [4], stride: [1] },
    ]);
    await expect(fromBytes(storageZip(mixed, { '0': f32(1, 2, 3, 4) }))).rejects.toThrow(/storage '0' is used as both FloatStorage and IntStorage/);
  });
});

/**
 * Real torch.save output (torch 1.13) for cases the committed fixtures do not
 * cover, gzip+base64. Made with tinymodels.Tiny = Conv2d(1, 2, 1, bias=False)
 * + buffer scale=[2.], non-persistent buffer tmp, parameter unused=None and a
 * plain tensor attribute stride_t:
 *  EXTRAS: {'model_state_dict': OrderedDict(param=nn.Parameter(arange(4.).reshape(2, 2)),
 *           complex=zeros(2, complex64), half=tensor([1.5, -2], float16),
 *           tagged=tensor([5., 6.]).as_subclass(tinymodels.Tagged)),
 *           'np_best': np.float64(0.25), 'np_int': np.int64(-3), 'size': torch.Size([1, 2]),
 *           'dtype': torch.float16, 'device': torch.device('cpu'), 'hist': list(range(100))}
 *  DATA_PARALLEL: nn.DataParallel(Tiny()) (CPU, so no device ids)
 *  LEGACY_MODULE: Tiny() saved with _use_new_zipfile_serialization=False
 *  SCRIPTED: torch.jit.save(torch.jit.script(nn.Sequential(B(), nn.ReLU()))) with
 *           B = conv (as in Tiny) + BatchNorm2d(2) + buffer scale=[2.]; stored as
 *           {entry name: base64} without the code/ entries RepLens does not read
 */
const EXTRAS =
  'H4sIAAAAAAACA52VXVMTVxjHNy+EsCpEfBdFRdGgEEjCmxIBA0bkrxAW0Ehrw7JZ2Iybl2d3w0hnnPEGxPGmF71obzr9Hh2nztAv0Atnetn79ju0Z8+GmCyj7XCS7Mmec/7P7znP8+zZNHx+QQgGhQMtJLQLsqFo+U21PydbcqT8Qk8lW4WVhvba+4qEcCbEBIVSTtWzpiVbajaXVyzyKEpJ11XFypeKpjhv5FRDzU2zGZG8PRL5wpkmJivLhlwgv2KVGCySrVh53RSzhrpWyeu5LJ9VLdUQqekzSyy1aJaM7GZMpEA4nGlmNk22Ut5QqdmRiCm9JFuLzqBIwYyHrRmgloyP9Uq5QiL8Fh1ZgAAvvDt0lHWeHTr2VrP9bLWoTaLQLr85/obaJTrBKUqpUNbVl3RSY1xtnzXljDYiT3FklE5rIrwWneGobToLzzadczDnLeqQ6EKGpUPQZH2dLjaYnWFDNXOd3FyMLjnmLlfNXbHNdTnmrlp0TaLuTIAttOSNDTVH1/cD6ETsUwTXjVIha22VVR7EG2EtwHJW3OIJNcUlrhYpbHujOcGLU4+DvllF37LRvQ66z6LIK+rnOymWLJUGuOYlRU2LYhLFKzx8xXJ2TWUjg0qxUihvRZSSoUYKFd3Ky4Yhb4mmIusyy/uQMy/mbA9FGs54mXh9lEbe7r6hUYluh+HjgATdmZubm/2HNX6BYNHYmpJV2D4UU1SL9h+REpmWWpHvfTdBd3mMdJltOUrjOzQh0eQO3ZMoySeYm/miRVPakOag86M0baPvS5RiaO0g9MGaluCPxN77vV/rPzSjMcBDiWZ3CBI94iEy89+q9Lia5kV2I9IcPHYdzm9TWqIF/pjw3ZNUXbZuV1d0WKRF7mNO3cwrKi1VZ51bkZZrBf5km55KlHGKK8+C/uw5rYRZ6hgHPvjRhACaEUQLRBzBURxDK9oQwnG04wRO4hRO4wzO4hzOowMXcBGduITLuIIuXMU1dOM6biCMHtzELfSiDxH0YwBRxBDHIIYwjBGM4jbuYAwJ3MU4JjCJe0hiCtO4jxQeYAYPMQvgER5jDvNIYwESFrGEZTzBU2TwDCv4Cl/jOb5BFquQsQZFrUTSaA7+EOr6bZft0P6lP3uutQqJhnOtfyCVHHWdav+/OTZfT7DLJPtO2n6861jtDvET9Mt+DDb6EU0lB4TD8T81m7+MX/4+BD92KP648MFmDn/8+L1dXP7/YE42MuOpZOLQsXf2/zOL+wce95Dw1482NPhFH9qEsZoPm6phspdTKjlyWCfiok3+/aeNZfto8HKyx+5q7PqqDB3wxv2Gdavra6m1QfmHX3DVsVtbXweN2tUmlzbq1tbns1H7p1sbc2vr89CoXQq4tHG3tj6SbY37rdNW85ZGINBbne709dWWBlz9C4/TS837D0mA/3tfhXr4WFPA0QT4emftv161i/AfCQAA';
const DATA_PARALLEL =
  'H4sIAAAAAAACA6VWT3PbRBSXncRJ1JKkAQqkpU0oFAdSJ3EoFBpI6gbzR5C6bkpFIRWKtPEKK5KfduXQzGQGDmnTGT4ApzJ8gV57YDhz4MQMdz4AJw7cebsrJ5IzJTNEGkva997v/fm9tzuuGT29mjYwoB24RrRRzY4c6rXJtGtzu9Rq+tXKkHY7c32bd3iIVqUgKLXsyPZ94peEudVZ6Uu4qnUWoE1+B7ltyBdNEZNHthd4QQN6ds1juJaoDcJJxKDXcULEONwLA6Zfi1wSEXfJc7gOfZN1KEgH1lq8vi6s+6kQDpinhDAIA6uFUo9xEvCOjcUIh0HHwrXncy+wLB0lOuircGwHjtfhKXNYurSd5qYduRYNwyaDIel52DwpdB6z1mPfz9rAyLI5JLTrYZQCnpDAUXM0rWpFJFE/LdXPmCeEmnGbE8vF6hLts1J70hwTWj+03bTJvpPnpNnzquwDZiHruHtB2o0pzjZCN/YJg1NSeNosoFDJ4EWkO7iLC+IzfQU/dTiDHTu7DeNF2rNLeyVkQkLiIGbEhZeWGVXsnyuafShnjo2eXk4Gw4q5h76siAjaXQs7wsLIapd1eKVYNPsFAC3tBoHzCqJXsRB+Qwl1eNXMoc0MFM0efDutGCaNHIfXrhuakduB18Vj6oFM4AKHUh2mpSHfaMEMxRD0PFUuZmGWSmg5gc6JxxsKepHDm3V4K6aDFOfhEp2xd+DtOrxDVfsv05Flqho6T1Xn3qWqR+9R1YQFqkhepIrXK2avyDcM2lDZ3yQJ9yUh16/io+zqcBUpXtqG91MUV4uS403iNSiHD55A5t520eHDTK1l+AhrzXP4GGstGnkjJ24ORlF9ie9PVOWfcliuw7Vduajdh+t1qMvU1zybwY3lOOnuiqLm5g58VodbCS/mPi+fJ7zcTnj5IuHly4SX1YSXO3Kn4/ZzqB0EOGdgGTnzOMrCmO8LvzLy0rBJIlxbzNsiYIvE78GapIbxyHMJOErmyklq2a4rjhOCDdbuwbqcd9fzbXGIQEOZUlNXR0/AcIfgBHsP5PbF8C3MoOPja+WjKYM1ojBuMfCTTBMbsZMIbMip3yJRyCAwx8UOi0gbDxzidpyhoEVwX+L4b3oOgbAonIubQyteYzJPVZDFATKtnINIjS1LxpaLR6ya1+awWYdvhAtRlEva6N7yXAZ3V2ErXivVjP6Bi1MTv/6EOYpf7YkH/pB2LnPgT89UK2e7jvsDF+IWRYjvH/5wS8yM+P1XiMVsiNlqZf6wEIfF10T8038uTfyP+OUjx1/55+c7K4MLIoe/fpt7LIIOHJLDfDaHuWrlknaE+q+I2GOPfhw/vP5hbWEvthhQ3BTVyuWjEDCni+i/P2zczKP/vIyeE6+9+OnhGzmQUfc/jG50eq6GMsi/+7Suce3Gpmcii10pdGFnu7HpXmaxf3Rjy93YdC+yWHFGZXvfjU0zOZyNm8ImvasZhcJUoj7Tc2HPtND1bubUu54EQZw4LLVfBtU6J2V9BYUpSHtl+y8w5oe7HwoAAA==';
const LEGACY_MODULE =
  'H4sIAAAAAAACA80a23LbxlWSnRuTNLc2bZxeNk5bAQpEilTsKEzkxPWldlVLsaxUbC0FBIGlgAgEuNiFZFnDmfQhqdNP6PShj/2HPvZr+gF96Ewfes7u4krK8WTyUGosEbtnz/22OP5i4c+N8L9/vfkf8vnfP3mj+cXCnX+dg98TNmf0Xp6bmxsnsYjdOLSPaMKDOGLzANB7EXbCQIiQ2jTyAidiC496DVgUJ2Nq8+Ah5ezchJ03ek/BIvfjRLCnNhZ65+ApiAR7euN87zziiKMD9szG+TQFmkbvaVgaxV4aUjbniiA6gQca8sYOfG2w+d5LsN8So3ErCVsHNOo0xydsofdwfm7ODR3OCcIZUdS8I3GY3QaBj0eHxLaDKBC2bXC9iB+ejmlimM180yy2mm4cHZF1AsiuwbeOZ7Qt0rEI/B4EDl+/6YScluETehBwQRN7kA6HgHaRu05IFy0i4sT1m4JGPE6M+53myr752HMgXn7qIU1ibrRNi4xR+wAXiceQHjuJM6ICsaRRyqkHiDbjqALMRRJ41BYgW5WzNeQsV9gwTo6dxDO4RR6YXZJQkSaRVovxwCRLiAolbLBzgp2/a/6RPTVhTxu9Z9EJEgc0ipZ91HsengvGOHvWBWcKKVg3jnhjK/FoQr3rgSsa7DlzmzWkDyju2fObXOLTuuHsBR9hXtReheTZ91wlhp2KADzFTuggDULPVmLZR50Ge8kwes/gAYB0Dih7WR1p3AxjR9xTiw32Su85gFl9f+Xdy/Czwl6VzuqOU/baxvymYN+/uzG3Mf8l+wH+ev1ryckPBfvRNntDQoLd2AUfaPkv+2Vca2sr7E1f4fixxvET/PVTheNngpFt9lbaexMljeLILmydCW5zKthF17ZRNogL227ASoO9vc9+7l9wvmS/2Ga/lNFhDxz3EC1n+3F8yNmipGH0Xse9gNvDNAyrMMzc7H0Pd7XJ9cElefCd3qvlrXFC9bYlt5d7r+A2F46gtgdG1LtNudvqXcBd0LJXBimQrEiwtpJ8CizmGbqOhFtVvqDyA2fvysVLMo2gV7LLhj+nnQGiVoNJh22oEG6w93rvYQZJedIKg0FrfCL8OFpteaDt5TEoBRyBtySKVhS1NIoWosBMs9b7y4Us0+ikYOPfTU8nFdv2YjAShFZy8eLFq+NxGFBOHNK5ThBHHKbo9SSGVEqciATROBWEBweREwLACCSmHomHhFOAgDUJIDGPQycCYRry4XZEhE/h4GgM7AniOpxacilOBaI8csKUIiJcC50TIHccCD8n+JBKPN2RI/xu39i0yDX7dE/QB+I0iCYTi9yyyK7ZBx69DOUsWNiSwLXn3cqz2Ze0XJB3QAnY3g04DU8gyXA3CQYgsMO7Sq5mk0gqRYYu8BibdlAjbX8+MUHVagGT8sSY3n+nwMXTkX16CCdWJp+dVgQmy6Q90YiOaXDgi2lUFjk0AYdwEpIdHOd8HZoNJcKxD+ksU5aE7pOASzuAUQIPXaHvQlLny26cJDR00CP6Nokh6B3wPKtsmU152CEDR7i+tJuVbV3rgwajWEj/itLRAGwMBnd9J4qgYlbQ3NJofCkagilHUE4FD2QcPMBD0uD60C4eUjIFnvQdDdWUi+Df5B3p5krwHR9IqIDBujqGgs9JN6HDbn9HZmKZbFc7H4rhaseGJOeMQGJ6pa99eisiLk0E1A2yvXVtBMIdBS4FlkCjEUk5VBMyRBTty4p7VGpB8jgIQ4CimqQXYNqEBKodDnT84XDcvoyER0FnZeVKHyscyRKhZmKJdB0hkm5fFck+Rq1I4lAZUC3Kc/g4ZUVQH0E+Q6p9LjMLBDsRKcRqnczY8Tw4UKPjjOI0kmbS+8SRmcSDgi0BpPxNcltoOjq2KIQ4JhbJKJw6PV2UPgdNwCKH8rsIjl7wotwA1HgQHCE0nNXoCvqYYAI3EFOMQBIbxAJd0suzUi6VF2ivrqkPEiziGFBxTKlKYYc0AW8l4xg5+YBAYxNrJg6j+DiC1CDB/vk3AnhS8OHwIE5AzBFKj07tO9hAoGKyfAL9Gbi29I1+GESHfVtj9B0ZKuBV5CjgKWjmoaPS8RCczBHT7HtxLtzpAdAfcxsjbpJ5PKSzvK/JTiuJZAfct2ruZNXtbs1QGdhSG3JAdV7Ez3LuXKTfB231+2R5GYPy2A8gN2AJUFoGfnT+Bw1gF5U7rA5/jHEV0l4wgtAEshUq/b70DyCABeQ4Vl5SJ6bqzTBIoP5Ifs4ilxOxcipE8iC5peAinkaQHawzJ89tguKLunDq0bHwj6GSQGeERhjARaRkmxq0m3pRBJ0h3GW81A0GAVxdTs6G72cGWtcB1M+TuFQvOFIUZzHRLIPLMANoWOA5ujxkCY/LVdrX3s19Z0wzV9exfSs+xh7AypMczdGhV0aLIsuyoMuTLDVJu3MSS/cRUApIuzlLwJnJGhuQkD4gniMgRcA1DipDk6J4emcVrj/66+V386/tzlo/S+JXkwNeUIE2NStHxAALwzVic6pQoVcVCgpG2IpnCEBPT4JBWRU8b3CiEnPRauWoSmEpMWEilG4OKO/hom6W1FmZENWR4uakVFw5bEHZRjJOiGgUQAWRZKJJrtOhk4aiS9o5uiyjIj4ry8gJUqkg/SRLvJ6n8r8DdW4Yp4lKvUCtFFWk7EE5zZU6TeygQZA6qX5/UV43wX8tfIBCitc0fKzQkFtYF6BTR18HrmHJDRI3DZ0EVkq0SzgL/9W57nGqrJUKXSZoSCEnCD5ToSpBa32WcBUOMwhj9xC0CKaJ9P2TDJN4VGqzs0/uW6BxHa3Z0kzi2H0SYxDHYYX27SFoYCdJKaoUlI8FKKROEmG+UodUSa8QVwQrWlQ4ssarCZkSmjRjaWlWSoOeaWmp5H5q0ax0a/cw5XRLaf82qqBb6/KhNZbdvfy7K/+a0t4Z2FkwJcRbUpg6Zuyp5TH1ZVd9mUJ+Fpil+uxGSW3Tdwf10YfxnhDSodgLoYmMk71h4rinim0CmulATw/1huvWXgfK5P7KPoig1jK3xcUajeKjsRjqiHLbPZl1NK62Ke8a+mqhcgpuTYCJ9l6CFXMvkSw+iXC7jxFu9xuFa88Srv3thGufLVz7TOGuQu8TQLdGS0VDXb+IoS4NEEPyCpvHjNrmWZbVNQyvzOjRFdYzP8pvcXt5MQFfUkrKbnKlrYx9lU/gPtufhXVaB2hEi8xYB/nNfrOCZMcvarUUhBeSOYnsMiAlejI7zaSOf1wnPP10YizvcZYASSSuv0EcqfiYcRTvv0p2LSDchPOLMPTwe5hQwHXW8ZLcnsyydbA/6dcyX24tUrOX3H4CYxnlWm82MXPq1hgxyPYrz6T1ihdl1+uz9Fk5UNbt/5E+Je4bDyRzvNT3X7lyhbxNdvHtDWcpOoc6zGUPTWEp1K1J5cio+ur6skVWV+GfpWHXO2aNQhRHyzMIpFGZhL47AC86iTwBTQP+XTJzwga+Q8f32bplNqCT7JjfDTdyIUtl3xVrVo5xHeHbNV5V35q9S0+Ag8jorAAc0LiEf1dWqgd0O7FORoY8a+bvvuypNwpFWvSFGPNuq0Wj5nFwGIypFzjNODlo4VPrWv1ggROvwNNoDkBr6aAJLXzryEvhvg9g8jWn7cjrNRWB24J+adAaOThZaG3fuHr9zo3myMt6kMb0aKVolWk4tGZdA7p4l7Rm9ve1rVK/3iXyj92xS/vKZKUtUGjbqne6XfJpBNq4L1vdHHQfXwFaU/3omchUYEsGqxuYmroEuz5Yx+RkzWy1u8gtQOhW2CLg4Dtb17dwqjIMIqrueHjjKniSb7/WcXZTYhRB5JpcgmJ7RU53CvMOHXz/fWLjO60DDiRPFxWmxa5GaZFFiQYX8O9klsbxBbY9doLEKC2aNd0XQOrZnJIdALLADIaQwYOICydyqaFXZeCZ0NVDtlaY9IY5ZZuCWLZi1qZ4KrQt6XuliV4lZZc80ao4n1WRPksIdp4K7CIJ2NXyI2dxluZtBZKFchY1JLQqboBtedVAZimIZPDlQzcMIJVaukTVVksXtOJZed+Wvm3cV8v7pfFmMJTaaFaufW/lflhtJvWA76acl0COvInHVIZSSm3aCb6R4NSzM4Rw+6BwCfRscSxdCwmsT5E0rTM7yqLhyxQmTyv1P/5YoXF5JDOPflRWKHykLp2W61vQLov3eNrTo9Rpq8oYVl+7dWaV0it+UTZHxrt8QAHMBntfsC5OYj+YsA8N/5lH/rNyRrauBuvqBLtyxsA0f5fZYB9NjTEvvb+2ssY+9l/bWNgU7OrdjTljY2FjHn8E+5WhvuH3a2qoeV2wG9vs5iP58Os/sVvb7Lac1CGn7Debqa9GuRv+Rf/tffbbL9mdbbbpq2nllm9u+mr++ImvBo13fTVS3PbVzPCer2aCO74aA34q58ylAGe/25jvvQBr5ThnuxsLErAU7qyHjH/Ffi91pMzP/qDW7suxsbY229uY25j7iu3LMWRmdPaZArXV/36ABoDLMR7rfy2nqqrcZyHDHIVjIIkpT2Gu5rQcNMyTI24ZqYz2CA4+vyH+2NBA5Pgj2EE6UKPzbNzP/OnR9KXVzhoL9Gj6cz2aPsRfobLiSLBom8XQKXyxsI//IaTqDvO1iflCbep9rkbqPG0uzOnPzr//8dnOcx/Nz+Wfj0vf50rfr/4PEjSR36IiAAA=';
const SCRIPTED =
  'H4sIAAAAAAACA41UXXOjNhT9Kzt+7nRB1J3SmTwIDCKASQAbhN5AisFGfMxibJyd/vcKbJJmvZ0sL8ajc88995wrvi/Sb7TYn16+svSYfpUWf39ZQPH48OFh8duXj6fydGpu5F5ebvXNX/cIcK3X4fMZwnz1E4Qyd7g994g/PkUsP+3y52ccv7clHzE5tA9YVqVMsQ+pqe7cOjjRymvcatm7lXwiVtQRvO4ToPYMmW1WRRede5ziiGd10Cbx2aE+bHMsNTHMRStNotWI4z1RDG1v5vEoAAP+igGRMzTskso8pAoraBXsUqSeUsXQNzzXRtzaMlaJrO4YUi8JKHb43Op6bRhOYqqOmZsjhgKvyFA0aLF31a0vdwwHbWatHazYPKmjNkOB4Ih6CtQLVpKL4ECOXiSacAxaU11BgOAANw7YogypBTPns62Yq2ignK/GnomiydTnLsRBQP3WhXoh3v0mPJvSPvYOGRg6IvSksdrTc/ssZuO0isoA8QOD7aBfeMhMe1ihXNujfJzXmHhHX2vD+zDzZTnP1Wf75TEDgfAtenUr75TVieOPNQe7FDM93XxBIxcDUUtAIVFfbbR93qSQNbp58xUbfgqF/lroD8yr/rLThP55Dhdup/+S0Oc6kS1tayOMxU0Qme7T2HylgfeUQvSYQvsphs2cdU8V7URBVNIgtGN97KbtxOyAYPuVxMGOIrMkSOyDrF4I1niCA05MVWKAHwg2okSZd65tmciSCs9SMHC9suU0HkqxO2L3hpYqvkODpMGh0G50MDxrLkSR0BntacCSaf2Q3dOg+LWdrkxJ+N0L3FEv7YIhr9lU6iXbTN6SyVuUP6cwacSvlcIimexY2QOqcjs8C4+wkYVn2IzvjtFp7LFo5qwtlG/ua73Bit9qX/63Vs7X067XUT/dJVk9klh4HWp32XqWUbxlG9rXbOt5N9+yPMSwG7O5sHjZp/GyxgopaG2U9xqjwX7XWH3UyN802nK+GftndXTE4Oofwd6OWXaRgCMnltHM3HPGejmcsoptpl2PGRc+tzGcrgKgYdvoYgeZaQ6O1EHH8pv/9nPnuzPmHcpyUht9qmm/lvV4NzERGvkpy9uQbIdI9D7dMn7n3Wgj7+DmH7//tKm7Y1ofu/cP52P7I+j08q3bN/V4vD43D4t//gVNxwbRXgYAAA==';
const blob = (b64: string) => new Uint8Array(gunzipSync(Buffer.from(b64, 'base64')));
const TINY_WEIGHT = [-0.007486820220947266, 0.5364435911178589];

describe('checkpoint shapes beyond the fixtures', () => {
  it('reads parameters, tensor subclasses, numpy scalars, torch.Size and dtypes, and skips complex tensors with a warning', async () => {
    const m = await fromBytes(blob(EXTRAS));
    expect(await values(m)).toEqual({ param: [0, 1, 2, 3], half: [1.5, -2], tagged: [5, 6] });
    expect(m.warnings).toEqual(['skipped entries RepLens cannot read (element type ComplexFloatStorage): complex']);
    expect(m.metadata).toMatchObject({
      stateDictKey: 'model_state_dict',
      np_best: 0.25,
      np_int: -3,
      size: [1, 2],
      dtype: '<torch.float16>',
      device: '<torch.device object>',
      hist: '[…] (100 items)',
      pickleGlobals: ['tinymodels.Tagged', 'numpy.dtype', 'torch.device'],
    });
  });

  it('flattens a DataParallel-wrapped full module in state_dict order, keeping the prefix', async () => {
    const m = await fromBytes(blob(DATA_PARALLEL));
    expect(m.tensors.map((t) => t.name)).toEqual(['module.scale', 'module.conv.weight']);
    expect((await values(m))['module.conv.weight']).toEqual(TINY_WEIGHT);
    expect(m.metadata.prefix).toBe('module.');
    expect(m.modules?.map((x) => [x.path, x.className])).toEqual([
      ['', 'torch.nn.parallel.data_parallel.DataParallel'],
      ['module', 'tinymodels.Tiny'],
      ['module.conv', 'torch.nn.modules.conv.Conv2d'],
    ]);
    // A tensor attribute is not plain data, so it is not among the attributes.
    expect(m.modules?.[1].attributes).toEqual({ training: true });
  });

  it('reads a TorchScript archive in state_dict order', async () => {
    const files = JSON.parse(new TextDecoder().decode(blob(SCRIPTED))) as Record<string, string>;
    const zip = writeZip(Object.entries(files).map(([name, b64]) => ({ name, data: new Uint8Array(Buffer.from(b64, 'base64')) })));
    const m = await fromBytes(zip);
    expect(await values(m)).toEqual({
      '0.scale': [2],
      '0.conv.weight': TINY_WEIGHT,
      '0.bn.weight': [1, 1],
      '0.bn.bias': [0, 0],
      '0.bn.running_mean': [0, 0],
      '0.bn.running_var': [1, 1],
      '0.bn.num_batches_tracked': [0],
    });
    expect(m.modules?.map((x) => [x.path, x.className])).toEqual([
      ['', 'torch.nn.modules.container.Sequential'],
      ['0', 'B'],
      ['0.conv', 'torch.nn.modules.conv.Conv2d'],
      ['0.bn', 'torch.nn.modules.batchnorm.BatchNorm2d'],
      ['1', 'torch.nn.modules.activation.ReLU'],
    ]);
    expect(m.warnings).toEqual([]);
  });

  it('reads a legacy full module whose classes are saved with their source', async () => {
    const m = await fromBytes(blob(LEGACY_MODULE), 'torch-legacy');
    expect(m.format).toBe('torch-legacy');
    expect(await values(m)).toEqual({ scale: [2], 'conv.weight': TINY_WEIGHT });
    expect(m.modules?.map((x) => x.path)).toEqual(['', 'conv']);
    expect(m.modules?.[1].attributes).toMatchObject({ kernel_size: [1, 1], groups: 1 });
  });
});

describe('damaged and hostile torch files', () => {
  it('rejects the invalid fixtures', async () => {
    for (const rel of Object.keys(EXPECTED.invalid)) {
      const bytes = new Uint8Array(readFileSync(join(FIXTURES, rel)));
      for (const format of ['torch-zip', 'torch-legacy']) {
        const err = await readEverything(bytes, format);
        expect(err, `${rel} as ${format}`).toBeInstanceOf(ModelFormatError);
        expect((err as ModelFormatError).file).toBe('bad.pth');
      }
    }
  });

  for (const [rel, format] of [
    ['models/repvgg_tiny_train.pth', 'torch-zip'],
    ['models/repvgg_tiny_train_legacy.pth', 'torch-legacy'],
  ] as const) {
    it(`${rel}: every truncation is a ModelFormatError at open`, async () => {
      const bytes = new Uint8Array(readFileSync(join(FIXTURES, rel)));
      const started = Date.now();
      const cuts = [
        ...Array.from({ length: 4000 }, (_, i) => i),
        ...Array.from({ length: 200 }, (_, i) => Math.floor((bytes.length * i) / 200)),
        bytes.length - 1,
      ];
      for (const len of cuts) {
        const err = await fromBytes(bytes.subarray(0, len), format, 'bad.pth').then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, `cut at ${len}`).toBeInstanceOf(ModelFormatError);
      }
      expect(Date.now() - started).toBeLessThan(20_000);
    }, 30_000);
  }

  it('every flipped byte in the pickle or tensor data of a zip checkpoint is caught by the CRC', async () => {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'models/dtypes.pth')));
    const zip = await ZipArchive.open(new MemoryByteSource('z', bytes));
    const started = Date.now();
    let checked = 0;
    for (const e of zip.entries.filter((x) => x.name.endsWith('data.pkl') || x.name.includes('/data/'))) {
      const start = await zip.dataOffset(e);
      for (let i = start; i < start + e.size; i += 3) {
        const bad = bytes.slice();
        bad[i] ^= 0x01;
        const err = await readEverything(bad, 'torch-zip');
        expect(err, `flip at ${i} in ${e.name}`).toBeInstanceOf(ModelFormatError);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(500);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 30_000);

  it('flipped bytes anywhere in a legacy checkpoint give values or a ModelFormatError, quickly', async () => {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'models/dtypes_legacy.pth')));
    const started = Date.now();
    let errors = 0;
    for (let i = 0; i < bytes.length; i++) {
      const bad = bytes.slice();
      bad[i] ^= 0xff;
      const err = await readEverything(bad, 'torch-legacy');
      if (err !== undefined) {
        expect(err, `flip at ${i}`).toBeInstanceOf(ModelFormatError);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(bytes.length / 10);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 30_000);

  for (const rel of Object.keys(EXPECTED.hostile).filter((r) => EXPECTED.hostile[r].detected !== 'unknown')) {
    it(`${rel}: nothing runs; placeholders with a warning or a ModelFormatError`, async () => {
      const format = EXPECTED.hostile[rel].detected;
      let m: ModelFile | undefined;
      try {
        m = await open(rel, format);
      } catch (e) {
        expect(e).toBeInstanceOf(ModelFormatError);
      }
      expect(existsSync(EXPECTED.marker_path)).toBe(false);
      if (m) {
        expect(m.warnings.join('\n')).toMatch(/RepLens never executes: .*(os\.system|builtins\.exec)/);
        for (const t of m.tensors) await t.readBytes();
        await m.close();
      }
    });
  }

  it('zip_state_dict_with_payload.pth: the real tensors are read, the payload is an inert entry', async () => {
    const m = await open('hostile/zip_state_dict_with_payload.pth', 'torch-zip');
    expect(m.tensors.length).toBeGreaterThan(0);
    expect(m.metadata.pickleGlobals).toEqual(['os.system']);
    expect(m.metadata.evil).toBe('<os.system object>');
    await m.close();
  });
});

const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];

/** A legacy checkpoint by hand: magic, version, sys_info, main pickle, key list, then count + bytes per storage. */
function legacyFile(main: Uint8Array, keys: string[], storages: Uint8Array[], itemSize = 4, version = 1001): Uint8Array {
  const parts: number[] = [...LEGACY_MAGIC, 0x80, 0x02, 0x4d, version & 0xff, version >> 8, 0x2e, 0x80, 0x02, 0x7d, 0x2e, ...main];
  parts.push(0x80, 0x02, 0x28, ...keys.flatMap((k) => [0x56, ...new TextEncoder().encode(k), 0x0a]), 0x6c, 0x2e);
  for (const data of storages) {
    const count = new Uint8Array(8);
    new DataView(count.buffer).setBigUint64(0, BigInt(data.length / itemSize), true);
    parts.push(...count, ...data);
  }
  return Uint8Array.from(parts);
}

describe('legacy layout by hand', () => {
  const one: HandTensor = { name: 'w', type: 'FloatStorage', key: '0', numel: 2, offset: 0, size: [2], stride: [1], pidTail: 'N' };

  it('walks the storage counts to the data', async () => {
    const two = tensorPickle([one, { ...one, name: 'v', key: '1', numel: 3, size: [3] }]);
    const m = await fromBytes(legacyFile(two, ['0', '1'], [f32(1, 2), f32(3, 4, 5)]), 'torch-legacy');
    expect(await values(m)).toEqual({ w: [1, 2], v: [3, 4, 5] });
  });

  it('rejects wrong magic, version, counts, unused or missing storages and storage views', async () => {
    const main = tensorPickle([one]);
    const good = legacyFile(main, ['0'], [f32(1, 2)]);
    const badMagic = good.slice();
    badMagic[5] ^= 1;
    await expect(fromBytes(badMagic, 'torch-legacy')).rejects.toThrow(/wrong magic number/);
    await expect(fromBytes(legacyFile(main, ['0'], [f32(1, 2)], 4, 1000), 'torch-legacy')).rejects.toThrow(/unsupported legacy protocol version 1000/);
    await expect(fromBytes(legacyFile(main, ['0'], [f32(1, 2, 3)]), 'torch-legacy')).rejects.toThrow(/storage '0' holds 3 elements but the pickle declared 2/);
    await expect(fromBytes(legacyFile(main, ['0', '1'], [f32(1, 2), f32(3)]), 'torch-legacy')).rejects.toThrow(/storage '1' is stored but no tensor uses it/);
    await expect(fromBytes(legacyFile(main, [], []), 'torch-legacy')).rejects.toThrow(/storage '0' is used but not stored/);
    const view = tensorPickle([{ ...one, pidTail: '(V9\nK\x00K\x02t' }]);
    await expect(fromBytes(legacyFile(view, ['0'], [f32(1, 2)]), 'torch-legacy')).rejects.toThrow(/storage '0' is a storage view/);
    await expect(fromBytes(new Uint8Array(0), 'torch-legacy')).rejects.toThrow(/empty file/);
  });
});

const ref = (values: number[], shape = [values.length]) =>
  new TorchTensorRef(
    't',
    new TorchStorage('0', new TorchStorageType('FloatStorage', 'float32', 4), values.length, false, async (o, l) => f32(...values).subarray(o, o + l)),
    0,
    shape,
    shape.length ? [1] : [],
  );

function dict(entries: Record<string, PyValue>, className = 'dict'): PyDict {
  const d = new PyDict(className);
  for (const [k, v] of Object.entries(entries)) d.items.set(k, v);
  return d;
}

/** An nn.Module placeholder as a pickle would leave it. */
function module(cls: string, params: Record<string, PyValue>, children: Record<string, PyValue> = {}, extra: Record<string, PyValue> = {}): PyObject {
  const m = new PyObject(new PyGlobal('m', cls), Object.freeze([]));
  m.state = dict({ training: false, _parameters: dict(params), _buffers: dict({}), _modules: dict(children), ...extra });
  return m;
}

describe('unwrapCheckpoint', () => {
  it('takes the first wrapper key that holds weights and keeps the rest as metadata', () => {
    const quantized = new PyObject(new PyGlobal('torch._utils', '_rebuild_qtensor'), Object.freeze([]));
    const ema = dict({ w: ref([1]), note: 'kept', q: quantized });
    const root = dict({ state_dict: null, model: dict({}), ema, net: dict({ v: ref([2]) }), epoch: 3 });
    const u = unwrapCheckpoint(root, []);
    expect(u.tensors.map((t) => t.name)).toEqual(['w']);
    expect(u.metadata).toEqual({
      stateDictKey: 'ema',
      state_dict: null,
      model: {},
      net: { v: '<tensor float32 [1]>' },
      epoch: 3,
      nonTensorEntries: { note: 'kept' },
    });
    expect(u.warnings).toEqual(['skipped entries RepLens cannot read (torch._utils._rebuild_qtensor object): q']);
  });

  it('takes the EMA weights of a YOLO training checkpoint, as its own loaders do, and lists every slot', async () => {
    const raw = module('models.yolo.Model', {}, { conv: module('torch.nn.Conv2d', { weight: ref([1, 2]) }) });
    const averaged = module('models.yolo.Model', {}, { conv: module('torch.nn.Conv2d', { weight: ref([3, 4]) }) });
    const root = dict({ epoch: 299, model: raw, ema: averaged, updates: 1200, optimizer: null });
    const u = unwrapCheckpoint(root, []);
    expect(u.weights).toEqual({
      key: 'ema',
      reason: "the EMA weights, which YOLO projects evaluate and export when a checkpoint has them (also in the file: 'model')",
      slots: [
        { key: 'model', holds: 'module' },
        { key: 'ema', holds: 'module' },
      ],
    });
    expect(u.metadata).toMatchObject({ stateDictKey: 'ema', model: '<m.models.yolo.Model module>', epoch: 299 });
    const asked = unwrapCheckpoint(root, [], { weights: 'model' });
    expect(asked.weights).toMatchObject({ key: 'model', reason: 'chosen' });
    expect(asked.metadata).toMatchObject({ stateDictKey: 'model', ema: '<m.models.yolo.Model module>' });
    // Each slot's own tensors, not the other's.
    expect([...(await u.tensors[0].toNumbers())]).toEqual([3, 4]);
    expect([...(await asked.tensors[0].toNumbers())]).toEqual([1, 2]);
  });

  it("falls back to 'model' when 'ema' is empty (a stripped best.pt), and follows timm's and mmpretrain's loaders", () => {
    const stripped = unwrapCheckpoint(dict({ model: dict({ w: ref([1]) }), ema: null, optimizer: null }), []);
    expect(stripped.weights).toEqual({ key: 'model', reason: 'the only key that holds weights', slots: [{ key: 'model', holds: 'state dict' }] });
    const timm = unwrapCheckpoint(dict({ epoch: 3, arch: 'repvgg_a0', state_dict: dict({ w: ref([1]) }), state_dict_ema: dict({ w: ref([2]) }) }), []);
    expect(timm.weights).toMatchObject({
      key: 'state_dict_ema',
      reason: "the EMA weights, which timm's loaders read by default (also in the file: 'state_dict')",
    });
    const raw = unwrapCheckpoint(dict({ state_dict: dict({ w: ref([1]) }), state_dict_ema: dict({ w: ref([2]) }) }), [], { weights: 'state_dict' });
    expect(raw.weights?.key).toBe('state_dict');
    const mmpretrain = unwrapCheckpoint(dict({ meta: dict({ epoch: 1 }), state_dict: dict({ w: ref([1]) }), ema_state_dict: dict({ w: ref([2]) }) }), []);
    expect(mmpretrain.weights).toMatchObject({ key: 'state_dict', reason: "the usual key for a model's weights (also in the file: 'ema_state_dict')" });
    const bare = unwrapCheckpoint(dict({ w: ref([1]) }), []);
    expect(bare.weights).toBeUndefined();
  });

  it('names the slots there are when asked for one the file does not have', () => {
    const root = dict({ model: dict({ w: ref([1]) }), ema: dict({ w: ref([2]) }) });
    expect(() => unwrapCheckpoint(root, [], { weights: 'EMA' })).toThrow(
      new WeightsSlotError("has no weights under 'EMA': its weights are under 'model', 'ema'"),
    );
    expect(() => unwrapCheckpoint(dict({ w: ref([1]) }), [], { weights: 'ema' })).toThrow(
      "has no weights under 'ema': it is a plain state dict, with no checkpoint keys to choose from",
    );
    expect(() => unwrapCheckpoint(module('m.Net', { w: ref([1]) }), [], { weights: 'ema' })).toThrow(
      "has no weights under 'ema': it holds m.m.Net object, with no checkpoint keys to choose from",
    );
  });

  it('reads a bare dict with stray non-tensors, and says when there are no tensors', () => {
    const u = unwrapCheckpoint(dict({ w: ref([1, 2]), epoch: 1 }), []);
    expect(u.tensors.map((t) => t.name)).toEqual(['w']);
    expect(u.metadata).toEqual({ epoch: 1 });
    const none = unwrapCheckpoint([1, 2], []);
    expect(none.tensors).toEqual([]);
    expect(none.metadata).toEqual({ content: [1, 2] });
    expect(none.warnings).toEqual(['no tensors found (the file holds list)']);
  });

  it('walks modules in state_dict order and survives cycles, non-modules and very deep trees', () => {
    const child = module('Leaf', { weight: ref([1]), bias: null });
    const root = module('Root', { p: ref([2]) }, { a: child, skip: null, bad: 5 }, { deploy: true, _private: 1, stride_t: ref([8]) });
    const selfRef = root.attributes().get('_modules') as PyDict;
    selfRef.items.set('loop', root);
    const u = unwrapCheckpoint(root, []);
    expect(u.tensors.map((t) => t.name)).toEqual(['p', 'a.weight']);
    expect(u.modules).toEqual([
      { path: '', className: 'm.Root', attributes: { training: false, deploy: true } },
      { path: 'a', className: 'm.Leaf', attributes: { training: false } },
    ]);
    expect(u.warnings).toEqual(["submodule 'bad' is int, not a module; skipped", "submodule 'loop' contains itself; not walked again"]);

    let deep = module('Leaf', { w: ref([1]) });
    for (let i = 0; i < 300; i++) deep = module('Node', {}, { c: deep });
    const d = unwrapCheckpoint(deep, []);
    expect(d.modules).toHaveLength(256);
    expect(d.warnings).toEqual([
      `module tree deeper than 256 at '${Array(256).fill('c').join('.')}'; deeper modules were not read`,
      'no tensors found (the file holds m.Node object)',
    ]);
  });

  it('warns about globals that only serve to run code, and lists all placeholders', () => {
    const globals = ['models.yolo.Model', 'os.system', 'builtins.getattr', '__builtin__.set', 'posix.system', 'torch.nn.modules.conv.Conv2d'];
    const u = unwrapCheckpoint(dict({ w: ref([1]) }), globals);
    expect(u.metadata.pickleGlobals).toEqual(globals);
    expect(u.warnings).toEqual(['file references callables that torch.load() would run but RepLens never executes: os.system, builtins.getattr, posix.system']);
    expect(isSuspiciousGlobal('subprocess.Popen')).toBe(true);
    expect(isSuspiciousGlobal('ossify.thing')).toBe(false);
    expect(isSuspiciousGlobal('builtins.slice')).toBe(false);
  });

  it('summarizes values into bounded JSON', () => {
    expect(summarize('x'.repeat(1500))).toBe(`${'x'.repeat(1000)}… (1500 characters)`);
    expect(summarize(2n ** 70n)).toBe('1180591620717411303424');
    expect(summarize(NaN)).toBe('NaN');
    expect(summarize(Uint8Array.of(1, 2))).toBe('<bytes, 2>');
    expect(summarize(Array.from({ length: 40 }, (_, i) => i))).toBe('[…] (40 items)');
    expect(summarize(dict({ a: [[[[[1]]]]] }))).toEqual({ a: [[['[…] (1 items)']]] });
    expect(summarize(dict({ state: dict({ 0: 1 }), param_groups: [] }))).toBe('{…} (optimizer state, 1 entries)');
    expect(summarize(module('Net', {}))).toBe('<m.Net module>');
    expect(summarize(new PyGlobal('os', 'system'))).toBe('<os.system>');
  });
});
