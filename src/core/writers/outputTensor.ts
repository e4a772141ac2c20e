import { crc32 } from 'node:zlib';
import { DTYPE_BYTES, numelOf, type DType } from '../formats/tensor';

/** A tensor to be written: its metadata is known up front, its bytes are produced when the writer reaches it. */
export interface OutputTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /** Its bytes: whole, or in pieces, in order (a large tensor streamed through a few reused buffers). */
  bytes(): Promise<Uint8Array | AsyncIterable<Uint8Array>>;
  /** Takes back each buffer `bytes()` gave once the writer is done with it (for reuse). */
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

/** One piece of a tensor's bytes, in write order, with the CRC-32 of the tensor's bytes up to its end. */
export interface WritePiece<T> {
  tensor: T;
  bytes: Uint8Array;
  crc: number;
  /** The tensor's first piece (a writer starts its record). */
  first: boolean;
  /** The tensor's last piece: `crc` is the whole tensor's. */
  last: boolean;
}

/**
 * The tensors' pieces in order, each checksummed the moment it arrives, before anything else can
 * touch it; every tensor's bytes add up to the size its header announced, or this throws.
 */
async function* produced<T extends OutputTensor>(tensors: readonly T[]): AsyncGenerator<WritePiece<T>> {
  for (const tensor of tensors) {
    const want = byteLengthOf(tensor);
    const made = await tensor.bytes();
    let got = 0;
    let crc = 0;
    for await (const bytes of made instanceof Uint8Array ? [made] : made) {
      if (bytes.length === 0) continue;
      got += bytes.length;
      if (got > want) throw new Error(`${tensor.name}: produced ${got} bytes, expected ${want}`);
      crc = crc32(bytes, crc);
      yield { tensor, bytes, crc: crc >>> 0, first: got === bytes.length, last: got === want };
    }
    if (got !== want) throw new Error(`${tensor.name}: produced ${got} bytes, expected ${want}`);
    // An empty tensor is one empty piece: its record is written all the same.
    if (want === 0) yield { tensor, bytes: new Uint8Array(0), crc: 0, first: true, last: true };
  }
}

/**
 * How many pieces are produced ahead of the one being written: reading and fusing the next
 * pieces overlaps writing this one, and memory stays at a few pieces.
 */
const AHEAD = 2;

/**
 * Every tensor's pieces with their checksums, in order, produced ahead of the writer; each piece
 * is released when the writer asks for the next one, so the writer must be done with it by then.
 */
export async function* inWriteOrder<T extends OutputTensor>(tensors: readonly T[]): AsyncGenerator<WritePiece<T>> {
  const source = produced(tensors);
  const ahead: Promise<IteratorResult<WritePiece<T>>>[] = [];
  try {
    for (;;) {
      while (ahead.length <= AHEAD) {
        const next = source.next();
        // Awaited in turn below; if the writer stops first, a later failure must not surface as unhandled.
        next.catch(() => undefined);
        ahead.push(next);
      }
      const result = await ahead.shift()!;
      if (result.done) return;
      yield result.value;
      result.value.tensor.release?.(result.value.bytes);
    }
  } finally {
    await source.return(undefined).catch(() => undefined);
  }
}

/** What was written of `tensor`, for the read-back check. */
export function writtenTensor(tensor: Pick<OutputTensor, 'name' | 'dtype' | 'shape'>, crc: number): WrittenTensor {
  return { name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, crc32: crc };
}
