import type { ByteSource } from './byteSource';
import { ModelFormatError } from './errors';
import type { ModelFile } from './modelFile';
import { unpickle, type PyValue } from './pickle';
import { TorchStorage, parseStoragePid, torchGlobals } from './torchObjects';
import { unwrapCheckpoint, type UnwrapOptions } from './unwrap';
import { ZipArchive } from './zip';

/**
 * The folder torch.save() put everything in ('<name>/data.pkl'). torch takes
 * it from the first entry; a single data.pkl anywhere is accepted too.
 */
function findPrefix(zip: ZipArchive): string {
  const first = zip.entries[0]?.name ?? '';
  const slash = first.indexOf('/');
  const prefix = slash >= 0 ? first.slice(0, slash + 1) : '';
  if (zip.entry(`${prefix}data.pkl`)) return prefix;
  const candidates = zip.entries.filter((e) => e.name === 'data.pkl' || e.name.endsWith('/data.pkl'));
  if (candidates.length === 1) return candidates[0].name.slice(0, -'data.pkl'.length);
  const listing = zip.entries
    .slice(0, 5)
    .map((e) => e.name)
    .join(', ');
  throw new ModelFormatError(
    zip.src.name,
    candidates.length === 0
      ? `not a PyTorch checkpoint: a zip archive without data.pkl (entries: ${listing}${zip.entries.length > 5 ? ', …' : ''})`
      : `zip archive with ${candidates.length} data.pkl files; cannot tell which is the checkpoint`,
  );
}

async function readByteOrder(zip: ZipArchive, prefix: string): Promise<boolean> {
  const entry = zip.entry(`${prefix}byteorder`);
  if (!entry) return false; // written only since torch 2.1; older files are little-endian
  if (entry.size > 16) throw new ModelFormatError(zip.src.name, `byteorder record of ${entry.size} bytes`);
  const text = new TextDecoder().decode(await zip.read(entry)).trim();
  if (text === 'little') return false;
  if (text === 'big') return true;
  throw new ModelFormatError(zip.src.name, `unknown byteorder '${text}'`);
}

/** torch >= 1.6 checkpoint: a zip with the pickle in data.pkl and one entry per storage under data/. */
export async function readTorchZip(src: ByteSource, options: UnwrapOptions = {}): Promise<ModelFile> {
  const file = src.name;
  const zip = await ZipArchive.open(src);
  const prefix = findPrefix(zip);
  const bigEndian = await readByteOrder(zip, prefix);
  const pickle = await zip.read(zip.entry(`${prefix}data.pkl`)!);

  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: PyValue): PyValue => {
    const { type, key, numel } = parseStoragePid(file, pid);
    const known = storages.get(key);
    if (known) {
      if (known.type !== type && known.type.name !== type.name) {
        throw new ModelFormatError(file, `storage '${key}' is used as both ${known.type.name} and ${type.name}`);
      }
      return known;
    }
    const entry = zip.entry(`${prefix}data/${key}`);
    if (!entry) throw new ModelFormatError(file, `storage '${key}' has no data/${key} entry`);
    if (numel * type.itemSize > entry.size) {
      throw new ModelFormatError(file, `storage '${key}' shorter than declared: ${entry.size} bytes for ${numel} ${type.name} elements`);
    }
    const storage = new TorchStorage(
      key,
      type,
      numel,
      bigEndian,
      (offset, length) => zip.read(entry, offset, length),
      { byteLength: entry.size, crc32: entry.crc32 },
      (offset) => zip.reader(entry, offset),
    );
    storages.set(key, storage);
    return storage;
  };

  const result = unpickle(pickle, 0, { file, persistentLoad, resolveGlobal: torchGlobals(file) });
  const { tensors, metadata, modules, pickled, weights, warnings } = unwrapCheckpoint(result.value, result.placeholderGlobals, options);
  return { path: file, format: 'torch-zip', tensors, metadata, modules, pickled, weights, warnings, close: () => src.close() };
}
