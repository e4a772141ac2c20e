import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileByteSource } from '../../../src/core/formats/byteSource';
import { isTuple, PyDict, PyFloat, PyGlobal, PyObject, PySet, unpickle, type PyValue } from '../../../src/core/formats/pickle';
import { parseStoragePid, torchGlobals, TorchStorage, TorchTensorRef } from '../../../src/core/formats/torchObjects';
import { ZipArchive } from '../../../src/core/formats/zip';
import { pickleObjectGraph, UnwritableValueError } from '../../../src/core/writers/modulePickle';

const LAST = path.join(__dirname, '..', '..', 'fixtures', 'peers', 'yolov7', 'tiny_repconv_last.pt');

/** Unpickles torch data.pkl bytes; storages are keyed records whose bytes are never read here. */
function load(bytes: Uint8Array): PyValue {
  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: PyValue) => {
    const { type, key, numel } = parseStoragePid('test', pid);
    if (!storages.has(key)) storages.set(key, new TorchStorage(key, type, numel, false, async () => new Uint8Array(0)));
    return storages.get(key)!;
  };
  return unpickle(bytes, 0, { file: 'test', persistentLoad, resolveGlobal: torchGlobals('test') }).value;
}

/** Everything the reader records of a value, with shared objects shown once. */
function describe_(v: PyValue, seen = new Map<object, number>()): unknown {
  if (v === null || typeof v !== 'object') return typeof v === 'bigint' ? `${v}n` : v;
  if (seen.has(v)) return { ref: seen.get(v) };
  seen.set(v, seen.size);
  const d = (x: PyValue) => describe_(x, seen);
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (Array.isArray(v)) return { [isTuple(v) ? 'tuple' : 'list']: v.map(d) };
  if (v instanceof PyDict) return { [v.className]: [...v.items].map(([k, x]) => [d(k), d(x)]), attrs: v.attrs && [...v.attrs].map(([k, x]) => [k, d(x)]) };
  if (v instanceof PySet) return { [v.frozen ? 'frozenset' : 'set']: [...v.items].map(d) };
  if (v instanceof PyFloat) return { float: v.value };
  if (v instanceof PyGlobal) return { global: v.qualifiedName };
  if (v instanceof PyObject)
    return {
      object: v.className,
      made: v.made,
      args: v.args.map(d),
      kwargs: v.kwargs && d(v.kwargs),
      state: v.state === undefined ? null : d(v.state),
      list: v.listItems?.map(d),
      dict: v.dictItems && [...v.dictItems].map(([k, x]) => [d(k), d(x)]),
    };
  if (v instanceof TorchTensorRef)
    return { tensor: v.storage.key, type: v.storage.type.name, offset: v.storageOffset, shape: v.shape, stride: v.stride, parameter: v.parameter };
  return { native: (v as { describe(): string }).describe() };
}

describe('pickleObjectGraph', () => {
  it('writes a YOLOv7 training checkpoint (pickled models, optimizer state, numpy values) back as the reader saw it', async () => {
    const zip = await ZipArchive.open(await FileByteSource.open(LAST));
    try {
      const entry = zip.entries.find((e) => e.name.endsWith('/data.pkl'))!;
      const original = load(await zip.read(entry));
      const keepKeys = {
        newTensor: () => {
          throw new Error('no new tensors here');
        },
        inputStorage: (s: TorchStorage) => s.key,
      };
      const written = pickleObjectGraph(original, keepKeys);
      const reread = load(written);
      expect(describe_(reread)).toEqual(describe_(original));
      // Written again, it is the same bytes: nothing drifts from one round to the next.
      expect(pickleObjectGraph(reread, keepKeys)).toEqual(written);
      // Whole floats stay floats (Upsample's scale_factor is 2.0, not 2).
      expect(JSON.stringify(describe_(reread))).toContain('["scale_factor",{"float":2}]');
    } finally {
      await zip.src.close();
    }
  });

  it('refuses what it cannot write back exactly', () => {
    const noStorage = { newTensor: () => '0', inputStorage: () => '0' };
    const keywords = new PyObject(new PyGlobal('m', 'C'), [], new PyDict(), 'call');
    expect(() => pickleObjectGraph(keywords, noStorage)).toThrow(UnwritableValueError);
  });
});
