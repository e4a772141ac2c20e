import type { ByteSink } from './atomicFile';
import { inWriteOrder, writtenTensor, type OutputTensor, type WrittenTensor } from './outputTensor';
import { pickleStateDict } from './statePickle';
import { ZipWriter } from './zipWriter';

const ARCHIVE = 'archive';

/**
 * A torch.save-compatible zip checkpoint holding a plain state dict. The pickle goes
 * first (it needs only names, dtypes and shapes); storages follow one tensor at a time.
 * Returns what was written, in order, for the read-back check.
 */
export async function writeTorchCheckpoint(sink: ByteSink, tensors: readonly OutputTensor[]): Promise<WrittenTensor[]> {
  const zip = new ZipWriter(sink);
  const keyed = tensors.map((t, i) => ({ ...t, key: String(i) }));
  await zip.add(`${ARCHIVE}/data.pkl`, pickleStateDict(keyed));
  await zip.add(`${ARCHIVE}/byteorder`, new TextEncoder().encode('little'));
  const written: WrittenTensor[] = [];
  for await (const { tensor, bytes, crc } of inWriteOrder(keyed)) {
    await zip.add(`${ARCHIVE}/data/${tensor.key}`, bytes, crc);
    written.push(writtenTensor(tensor, crc));
  }
  await zip.add(`${ARCHIVE}/version`, new TextEncoder().encode('3\n'));
  await zip.finish();
  return written;
}
