import { crc32 } from 'node:zlib';
import type { BufferPool } from '../formats/bufferPool';
import { piecesOf } from '../formats/byteReader';
import type { ModelFormat } from '../formats/modelFile';
import { openModelFile } from '../formats/openModelFile';
import { hex, verifyFileBytes, type ProducedBytes } from './checksum';
import type { WrittenTensor } from './outputTensor';

/**
 * The read-back checks writeAtomically runs on a finished temporary file before it is moved into
 * place. They read with RepLens' own readers, as any later use of the file would, and compare
 * with checksums taken when the bytes were produced: a writer that published bytes other than the
 * ones it was given (a buffer reused too early, a short write) fails here instead of in the user's
 * PyTorch. A failure throws a plain Error whose message says what differs.
 */

const shapeText = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** A tensor file (PyTorch zip or safetensors) holds exactly `expected`, in order, byte for byte. */
export async function verifyTensorFile(file: string, format: ModelFormat, expected: readonly WrittenTensor[], pool?: BufferPool): Promise<void> {
  const model = await openModelFile(file, { pool });
  try {
    if (model.format !== format) throw new Error(`it reads as ${model.format}, not ${format}`);
    if (model.tensors.length !== expected.length) throw new Error(`it holds ${model.tensors.length} tensors, ${expected.length} were written`);
    for (const [i, tensor] of model.tensors.entries()) {
      const want = expected[i];
      if (tensor.name !== want.name) throw new Error(`tensor ${i} is '${tensor.name}', '${want.name}' was written`);
      if (tensor.dtype !== want.dtype || shapeText(tensor.shape) !== shapeText(want.shape)) {
        throw new Error(`'${want.name}' reads as ${tensor.dtype} ${shapeText(tensor.shape)}, ${want.dtype} ${shapeText(want.shape)} was written`);
      }
      // Read in pieces, as they were written. Where the reader checks them against their zip record's CRC, that CRC is theirs.
      let running = 0;
      for await (const bytes of piecesOf(tensor.reader(), tensor.byteLength)) {
        if (tensor.checkedCrc32 === undefined) running = crc32(bytes, running);
        pool?.give(bytes);
      }
      const crc = tensor.checkedCrc32 ?? running >>> 0;
      if (crc !== want.crc32) throw new Error(`the bytes of '${want.name}' differ from those produced (CRC-32 ${hex(crc)}, produced ${hex(want.crc32)})`);
    }
  } finally {
    await model.close();
  }
}

/** A model file written from one produced buffer (an encoded ONNX model) has its length and checksum, and reads as `format`. */
export async function verifyEncodedFile(file: string, format: ModelFormat, produced: ProducedBytes): Promise<void> {
  await verifyFileBytes(file, produced);
  const model = await openModelFile(file);
  const read = model.format;
  await model.close();
  if (read !== format) throw new Error(`it reads as ${read}, not ${format}`);
}
