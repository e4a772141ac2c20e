import { crc32 } from 'node:zlib';
import type { ByteSink } from './atomicFile';
import { inWriteOrder, type OutputTensor } from './outputTensor';
import { pickleStateDict } from './statePickle';
import { ZipWriter } from './zipWriter';

const ARCHIVE = 'archive';

/**
 * A torch.save-compatible zip checkpoint holding a plain state dict. The pickle goes
 * first (it needs only names, dtypes and shapes); storages follow one tensor at a time.
 */
export async function writeTorchCheckpoint(sink: ByteSink, tensors: readonly OutputTensor[]): Promise<void> {
  const zip = new ZipWriter(sink);
  const keyed = tensors.map((t, i) => ({ ...t, key: String(i) }));
  await zip.add(`${ARCHIVE}/data.pkl`, pickleStateDict(keyed));
  await zip.add(`${ARCHIVE}/byteorder`, new TextEncoder().encode('little'));
  for await (const { tensor, bytes, prepared: crc } of inWriteOrder(keyed, crc32)) {
    await zip.add(`${ARCHIVE}/data/${tensor.key}`, bytes, crc);
  }
  await zip.add(`${ARCHIVE}/version`, new TextEncoder().encode('3\n'));
  await zip.finish();
}
