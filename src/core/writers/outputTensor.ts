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
 * Each tensor with its checked bytes, in order, produced ahead of the writer so that
 * reading and fusing overlap writing; each tensor's bytes are released when the writer
 * asks for the next one. `prepare` runs as each tensor's bytes arrive (a checksum, say),
 * so that work too is done while an earlier tensor is being written.
 */
export async function* inWriteOrder<T extends OutputTensor, P = undefined>(
  tensors: readonly T[],
  prepare?: (bytes: Uint8Array) => P,
): AsyncGenerator<{ tensor: T; bytes: Uint8Array; prepared: P }> {
  const queue: Promise<{ bytes: Uint8Array; prepared: P }>[] = [];
  let started = 0;
  for (let i = 0; i < tensors.length; i++) {
    while (started < tensors.length && started <= i + AHEAD) {
      const produced = checkedBytes(tensors[started++]).then((bytes) => ({ bytes, prepared: prepare?.(bytes) as P }));
      // Awaited in turn below; if the writer stops first, a later failure must not surface as unhandled.
      produced.catch(() => undefined);
      queue.push(produced);
    }
    const { bytes, prepared } = await queue.shift()!;
    yield { tensor: tensors[i], bytes, prepared };
    tensors[i].release?.(bytes);
  }
}
