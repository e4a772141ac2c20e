import type { ByteSource } from './byteSource';
import { ModelFormatError, truncatedReason } from './errors';
import type { ModelFile } from './modelFile';
import { PickleEndOfInput, PyDict, PyGlobal, describeType, isList, unpickle, type PyValue, type UnpickleOptions, type UnpickleResult } from './pickle';
import { TorchStorage, parseStoragePid, torchGlobals } from './torchObjects';
import { unwrapCheckpoint, type UnwrapOptions } from './unwrap';

const MAGIC = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;
const FIRST_CHUNK = 64 * 1024;

/**
 * Unpickle the pickle starting at `offset`. Pickles here are followed by
 * storage data, so the file is read in growing chunks until STOP is found
 * instead of being read whole.
 */
async function unpickleAt(src: ByteSource, offset: number, opts: UnpickleOptions): Promise<UnpickleResult> {
  let length = Math.min(src.size - offset, FIRST_CHUNK);
  for (;;) {
    const bytes = await src.read(offset, length);
    try {
      const r = unpickle(bytes, 0, { ...opts, offsetBase: offset });
      return { ...r, end: offset + r.end };
    } catch (e) {
      // A pickle that runs on past the end of the file: the file was cut short inside it.
      if (e instanceof PickleEndOfInput && offset + length >= src.size)
        throw new ModelFormatError(src.name, truncatedReason(src.size, 'a pickle of a legacy PyTorch checkpoint', e.reason.replace(/^pickle truncated: /, '')));
      if (!(e instanceof PickleEndOfInput)) throw e;
      length = Math.min(src.size - offset, length * 4);
    }
  }
}

/**
 * torch < 1.6 layout (and _use_new_zipfile_serialization=False): magic
 * number, protocol version and sys_info pickles, the main pickle, a pickled
 * list of storage keys, then each storage as an 8-byte little-endian element
 * count followed by its raw little-endian bytes, in key-list order.
 */
export async function readTorchLegacy(src: ByteSource, options: UnwrapOptions = {}): Promise<ModelFile> {
  const file = src.name;
  function fail(reason: string): never {
    throw new ModelFormatError(file, reason);
  }
  if (src.size === 0) fail('empty file');
  const magic = await unpickleAt(src, 0, { file });
  if (magic.value !== MAGIC) fail('not a legacy PyTorch file: wrong magic number');
  const version = await unpickleAt(src, magic.end, { file });
  if (version.value !== PROTOCOL_VERSION) fail(`unsupported legacy protocol version ${String(version.value)}`);
  // sys_info describes the writer; storages are little-endian whatever it says, as torch wrote them so.
  const sysInfo = await unpickleAt(src, version.end, { file });
  if (!(sysInfo.value instanceof PyDict)) fail(`sys_info is ${describeType(sysInfo.value)}, not a dict`);

  const roots = new Map<string, TorchStorage>();
  const offsets = new Map<string, number>();
  const persistentLoad = (pid: PyValue): PyValue => {
    // Module classes are saved with their source for a check torch.load does; only the class matters here.
    if (Array.isArray(pid) && pid[0] === 'module' && pid[1] instanceof PyGlobal) return pid[1];
    const { type, key, numel, rest } = parseStoragePid(file, pid);
    if (rest[0] !== null && rest[0] !== undefined) fail(`storage '${key}' is a storage view (torch < 0.4 file); not supported`);
    const known = roots.get(key);
    if (known) return known;
    if (type.itemSize === 0) fail(`storage '${key}' has unknown type ${type.name}`);
    // offsets is filled in below, before any tensor can be read.
    const storage = new TorchStorage(key, type, numel, false, (byteOffset, byteLength) => src.read(offsets.get(key)! + byteOffset, byteLength));
    roots.set(key, storage);
    return storage;
  };
  const main = await unpickleAt(src, sysInfo.end, { file, persistentLoad, resolveGlobal: torchGlobals(file) });
  const keyList = await unpickleAt(src, main.end, { file });
  const keys = keyList.value;
  if (!isList(keys)) fail(`storage key list is ${describeType(keys)}`);

  // Walk the counts to find each storage; the data itself is read only when a tensor is.
  let pos = keyList.end;
  for (const key of keys) {
    if (typeof key !== 'string') fail(`storage key is ${describeType(key)}`);
    const root = roots.get(key);
    if (!root) fail(`storage '${key}' is stored but no tensor uses it`);
    if (pos + 8 > src.size)
      fail(truncatedReason(src.size, 'the storages of a legacy PyTorch checkpoint', `the header of storage '${key}' starts at byte ${pos}`));
    const header = await src.read(pos, 8);
    const count = new DataView(header.buffer, header.byteOffset, 8).getBigUint64(0, true);
    if (count !== BigInt(root.numel)) fail(`storage '${key}' holds ${count} elements but the pickle declared ${root.numel}`);
    const end = pos + 8 + root.numel * root.type.itemSize;
    if (end > src.size) fail(truncatedReason(src.size, 'the storages of a legacy PyTorch checkpoint', `storage '${key}' needs bytes up to ${end}`));
    offsets.set(key, pos + 8);
    pos = end;
  }
  for (const key of roots.keys()) if (!offsets.has(key)) fail(`storage '${key}' is used but not stored`);

  const { tensors, metadata, modules, pickled, weights, warnings } = unwrapCheckpoint(main.value, main.placeholderGlobals, options);
  return { path: file, format: 'torch-legacy', tensors, metadata, modules, pickled, weights, warnings, close: () => src.close() };
}
