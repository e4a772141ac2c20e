import type { DType } from '../formats/tensor';
import type { ByteSink } from './atomicFile';
import { byteLengthOf, inWriteOrder, writtenTensor, type OutputTensor, type WrittenTensor } from './outputTensor';

const DTYPE_NAMES: Record<DType, string> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};

/** A safetensors file: the header (known up front) then each tensor's bytes in order. Returns what was written, for the read-back check. */
export async function writeSafetensors(sink: ByteSink, tensors: readonly OutputTensor[], metadata: Record<string, string> = {}): Promise<WrittenTensor[]> {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const end = offset + byteLengthOf(t);
    header[t.name] = { dtype: DTYPE_NAMES[t.dtype], shape: t.shape, data_offsets: [offset, end] };
    offset = end;
  }
  let json = JSON.stringify(header);
  // The spec recommends padding the header with spaces so the data starts 8-byte aligned.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  await sink.write(len);
  await sink.write(headerBytes);
  const written: WrittenTensor[] = [];
  for await (const { tensor, bytes, crc, last } of inWriteOrder(tensors)) {
    await sink.write(bytes);
    if (last) written.push(writtenTensor(tensor, crc));
  }
  return written;
}
