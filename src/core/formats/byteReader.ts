/**
 * Reads a run of bytes front to back, a piece at a time: `next(n)` gives the next n bytes, which no
 * later piece overwrites. From a file with a pool, each piece is a pool buffer of its own; from a
 * file held in memory, a view of it: only a buffer the pool owns may be written to (BufferPool.owns).
 * A converter streams large tensors this way, so that a model of any size is fused in a few reused
 * buffers instead of one new buffer per tensor.
 */
export interface ByteReader {
  next(byteLength: number): Promise<Uint8Array>;
}

/** The bytes [start, end) of whatever `read` reads, in order; asking past `end` is a caller's bug. */
export function rangeReader(read: (offset: number, length: number) => Promise<Uint8Array>, start: number, end: number, name: string): ByteReader {
  let at = start;
  return {
    next: async (length) => {
      if (at + length > end) throw new Error(`${name}: read of ${length} bytes at ${at - start} runs past its ${end - start} bytes`);
      const bytes = await read(at, length);
      at += length;
      return bytes;
    },
  };
}

/**
 * How much of a large tensor a converter holds at once: small enough that a piece stays in the
 * core's cache while it is read, checksummed, fused, checksummed and written, large enough that
 * each costs few system calls. On a RepVGG-B3 checkpoint 1 MiB converted fastest of 0.25–8 MiB.
 */
export const PIECE_BYTES = 1 << 20;

/** `total` bytes from `reader` in pieces of at most `pieceBytes`, each a whole number of `unit`-byte elements. */
export async function* piecesOf(reader: ByteReader, total: number, unit = 1, pieceBytes = PIECE_BYTES): AsyncGenerator<Uint8Array> {
  const step = Math.max(unit, pieceBytes - (pieceBytes % unit));
  for (let at = 0; at < total; at += step) yield await reader.next(Math.min(step, total - at));
}
