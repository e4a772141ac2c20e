import type { PyValue } from '../formats/pickle';
import { byteSwapped, type TorchStorage } from '../formats/torchObjects';
import type { ByteSink } from './atomicFile';
import { pickleObjectGraph, UnwritableValueError } from './modulePickle';
import { byteLengthOf, inWriteOrder, writtenTensor, type OutputTensor, type WrittenTensor } from './outputTensor';
import { pickleStateDict } from './statePickle';
import { ZipWriter, type ZipRecord } from './zipWriter';

const ARCHIVE = 'archive';

/** The pickle of a whole-module checkpoint and the input storages it still refers to (tensors outside the state dict). */
export interface ModuleCheckpoint {
  pickle: Uint8Array;
  copied: Map<TorchStorage, string>;
}

/**
 * Pickles `graph`, a model whose state-dict tensors are NewTensors named in `tensors`, for
 * writeTorchCheckpoint: records 0… hold `tensors` in order, the input storages follow.
 * Throws UnwritableValueError for what cannot be written back.
 */
export function pickleModuleCheckpoint(graph: PyValue, tensors: readonly OutputTensor[]): ModuleCheckpoint {
  const keyOf = new Map(tensors.map((t, i) => [t.name, String(i)]));
  const copied = new Map<TorchStorage, string>();
  const pickle = pickleObjectGraph(graph, {
    newTensor: (t) => {
      const key = keyOf.get(t.name);
      if (key === undefined) throw new UnwritableValueError(`tensor '${t.name}', which was not produced`);
      return key;
    },
    inputStorage: (s) => {
      if (s.type.itemSize === 0) throw new UnwritableValueError(`a ${s.type.name}`);
      let key = copied.get(s);
      if (key === undefined) copied.set(s, (key = String(tensors.length + copied.size)));
      return key;
    },
  });
  return { pickle, copied };
}

/**
 * A torch.save-compatible zip checkpoint: a plain state dict of `tensors`, or the model pickled by
 * pickleModuleCheckpoint. The pickle goes first (it needs only names, dtypes and shapes); storages
 * follow one tensor at a time, then the input storages the model still holds, copied.
 * Returns the state-dict tensors written, in order, for the read-back check.
 */
export async function writeTorchCheckpoint(sink: ByteSink, tensors: readonly OutputTensor[], module?: ModuleCheckpoint): Promise<WrittenTensor[]> {
  const zip = new ZipWriter(sink);
  const keyed = tensors.map((t, i) => ({ ...t, key: String(i) }));
  await zip.add(`${ARCHIVE}/data.pkl`, module?.pickle ?? pickleStateDict(keyed));
  await zip.add(`${ARCHIVE}/byteorder`, new TextEncoder().encode('little'));
  const written: WrittenTensor[] = [];
  let record: ZipRecord | undefined;
  for await (const { tensor, bytes, crc, first, last } of inWriteOrder(keyed)) {
    if (first) record = await zip.begin(`${ARCHIVE}/data/${tensor.key}`, byteLengthOf(tensor));
    await sink.write(bytes);
    if (last) {
      await zip.end(record!, crc);
      written.push(writtenTensor(tensor, crc));
    }
  }
  for (const [storage, key] of module?.copied ?? []) {
    const size = storage.type.itemSize;
    const bytes = await storage.readBytes(0, storage.numel * size);
    await zip.add(`${ARCHIVE}/data/${key}`, storage.bigEndian && size > 1 ? byteSwapped(bytes, size) : bytes);
  }
  await zip.add(`${ARCHIVE}/version`, new TextEncoder().encode('3\n'));
  await zip.finish();
  return written;
}
