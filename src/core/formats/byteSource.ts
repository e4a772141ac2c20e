import { promises as fs } from 'node:fs';
import type { BufferPool } from './bufferPool';
import { ModelFormatError } from './errors';

/**
 * Random access to the bytes of a model file. Readers ask for the ranges they
 * need, so a large checkpoint is never read whole just to list its tensors.
 */
export interface ByteSource {
  /** Name used in error messages (usually the file path). */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`; a ModelFormatError if the range lies outside the source. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** What a folder given as a model file is told. */
export const FOLDER = 'this is a folder, not a model file';

function checkRange(src: ByteSource, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > src.size) {
    throw new ModelFormatError(src.name, `truncated: needs bytes ${offset}..${offset + length} but the file has ${src.size}`);
  }
}

export class FileByteSource implements ByteSource {
  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly handle: fs.FileHandle,
    private readonly pool?: BufferPool,
  ) {}

  /** With a pool, reads land in its buffers (a converter hands them back once written). */
  static async open(path: string, pool?: BufferPool): Promise<FileByteSource> {
    const handle = await fs.open(path, 'r');
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new ModelFormatError(path, stat.isDirectory() ? FOLDER : 'not a regular file');
      return new FileByteSource(path, stat.size, handle, pool);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const out = this.pool ? this.pool.take(length) : new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(out, done, length - done, offset + done);
      // The file shrank under us: say so instead of returning zeros.
      if (bytesRead === 0) throw new ModelFormatError(this.name, `file changed while reading (ended at ${offset + done})`);
      done += bytesRead;
    }
    return out;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

export class MemoryByteSource implements ByteSource {
  readonly size: number;
  constructor(
    readonly name: string,
    private readonly bytes: Uint8Array,
  ) {
    this.size = bytes.length;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }

  async close(): Promise<void> {}
}
