import { crc32 } from 'node:zlib';
import { DTYPE_BYTES, numelOf, type DType } from '../formats/tensor';

/** A tensor to be written: its metadata is known up front, its bytes are produced when the writer reaches it. */
export interface OutputTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  bytes(): Promise<Uint8Array>;
  /** Takes back what `bytes()` returned once the writer is done with it (for reuse). */
  release?(bytes: Uint8Array): void;
}

/**
 * A tensor as its writer produced it: the checksum is taken the moment its bytes arrive, before
 * anything else can touch them, and the file read back must give the same (verifyOutput.ts).
 */
export interface WrittenTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  crc32: number;
}

export function byteLengthOf(t: Pick<OutputTensor, 'name' | 'dtype' | 'shape'>): number {
  return numelOf(t.shape, t.name) * DTYPE_BYTES[t.dtype];
}

/** Produces a tensor's bytes and checks they have the size its header announced. */
async function checkedBytes(t: OutputTensor): Promise<Uint8Array> {
  const data = await t.bytes();
  const want = byteLengthOf(t);
  if (data.length !== want) throw new Error(`${t.name}: produced ${data.length} bytes, expected ${want}`);
  return data;
}

/**
 * How many tensors are produced ahead of the one being written. A fused block is a large
 * weight then a tiny bias: two ahead lets the next block be read and fused while this
 * block's weight is being written.
 */
const AHEAD = 2;

/**
 * Each tensor with its checked bytes and their CRC-32, in order, produced ahead of the writer
 * so that reading, fusing and checksumming overlap writing; each tensor's bytes are released
 * when the writer asks for the next one, so the writer must be done with them by then.
 */
export async function* inWriteOrder<T extends OutputTensor>(tensors: readonly T[]): AsyncGenerator<{ tensor: T; bytes: Uint8Array; crc: number }> {
  const queue: Promise<{ bytes: Uint8Array; crc: number }>[] = [];
  let started = 0;
  for (let i = 0; i < tensors.length; i++) {
    while (started < tensors.length && started <= i + AHEAD) {
      const produced = checkedBytes(tensors[started++]).then((bytes) => ({ bytes, crc: crc32(bytes) >>> 0 }));
      // Awaited in turn below; if the writer stops first, a later failure must not surface as unhandled.
      produced.catch(() => undefined);
      queue.push(produced);
    }
    const { bytes, crc } = await queue.shift()!;
    yield { tensor: tensors[i], bytes, crc };
    tensors[i].release?.(bytes);
  }
}

/** What was written of `tensor`, for the read-back check. */
export function writtenTensor(tensor: Pick<OutputTensor, 'name' | 'dtype' | 'shape'>, crc: number): WrittenTensor {
  return { name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, crc32: crc };
}
