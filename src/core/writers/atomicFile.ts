import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Why an output could not be written; the message names the file. */
export class OutputError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
    readonly code: 'exists' | 'is-input' | 'io' | 'cancelled' = 'io',
  ) {
    super(`${file}: ${reason}`);
    this.name = 'OutputError';
  }
}

const BATCH_BYTES = 1 << 20;

/** Sequential writes with a position, buffered so that small headers do not each cost a syscall. */
export class ByteSink {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private written = 0;

  constructor(
    private readonly handle: fs.FileHandle,
    private readonly signal?: AbortSignal,
  ) {}

  /** Bytes written so far (including buffered ones). */
  get position(): number {
    return this.written + this.pendingBytes;
  }

  async write(bytes: Uint8Array): Promise<void> {
    // writeAtomically puts the target's name on it.
    if (this.signal?.aborted) throw cancelledError('(output)');
    // Large chunks (tensor data) go straight to the file: copying them into a batch costs more than the syscall.
    if (bytes.length >= BATCH_BYTES) {
      await this.flush();
      await this.writeOut(bytes);
      return;
    }
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= BATCH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const chunks = this.pending;
    const total = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    await this.writeOut(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total));
  }

  private async writeOut(bytes: Uint8Array): Promise<void> {
    let buffer = bytes;
    while (buffer.length > 0) {
      const { bytesWritten } = await this.handle.write(buffer, 0, buffer.length, this.written);
      this.written += bytesWritten;
      buffer = buffer.subarray(bytesWritten);
    }
  }
}

async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    const [sa, sb] = await Promise.all([fs.stat(a), fs.stat(b)]);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

const exists = (file: string) => fs.stat(file).then(() => true, () => false);

/** The error of a cancelled write; `file` is the output, or the input when no output is known yet. */
export function cancelledError(file: string): OutputError {
  return new OutputError(file, 'cancelled; nothing was written', 'cancelled');
}

// link() fails like this where the file system has no hard links (FAT, some network shares).
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Puts the finished temporary file at `target`. Without `overwrite`, link() is the atomic
 * "create unless it exists": a target that appeared while this one was written (another
 * conversion of the same file) is left as it is, where a rename would silently replace it.
 */
async function moveIntoPlace(temp: string, target: string, shown: string, overwrite: boolean): Promise<void> {
  if (overwrite) return fs.rename(temp, target);
  const appeared = () => new OutputError(shown, 'was created by someone else while this output was being written; it was left as it is (use --force to replace it)', 'exists');
  try {
    await fs.link(temp, target);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'EEXIST') throw appeared();
    if (typeof code !== 'string' || !NO_HARD_LINKS.has(code)) throw e;
    // No atomic way here: check as late as possible, then rename.
    if (await exists(target)) throw appeared();
    return fs.rename(temp, target);
  }
  await fs.unlink(temp);
}

export interface AtomicWriteOptions {
  /** Replace an existing target. */
  overwrite?: boolean;
  /** Files the output must never replace (the inputs). */
  protect?: readonly string[];
  signal?: AbortSignal;
}

/**
 * Writes `target` through a temporary file in the same folder, fsyncs it and moves it into
 * place, so a reader never sees a half-written file and a failure leaves nothing behind.
 * Without `overwrite` an existing target is never replaced, even one created meanwhile.
 * Cancelling takes effect until the file is moved into place; after that the output is complete.
 */
export async function writeAtomically(target: string, write: (sink: ByteSink) => Promise<void>, options: AtomicWriteOptions = {}): Promise<number> {
  const resolved = path.resolve(target);
  const { signal } = options;
  for (const input of options.protect ?? []) {
    if (path.resolve(input) === resolved || (await sameFile(input, resolved))) {
      throw new OutputError(target, 'is the input file; RepLens never overwrites its input', 'is-input');
    }
  }
  // Checked first so that a conversion whose output is already there costs nothing; moveIntoPlace decides for good.
  if (!options.overwrite && (await exists(resolved))) throw new OutputError(target, 'already exists (use --force to replace it)', 'exists');
  if (signal?.aborted) throw cancelledError(target);
  const temp = path.join(path.dirname(resolved), `.${path.basename(resolved)}.${randomBytes(6).toString('hex')}.replens-tmp`);
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(temp, 'wx', 0o644);
    const sink = new ByteSink(handle, signal);
    await write(sink);
    await sink.flush();
    await handle.sync();
    await handle.close();
    handle = undefined;
    if (signal?.aborted) throw cancelledError(target);
    await moveIntoPlace(temp, resolved, target, options.overwrite ?? false);
    return sink.position;
  } catch (e) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temp, { force: true }).catch(() => undefined);
    if (e instanceof OutputError) throw e.code === 'cancelled' ? cancelledError(target) : e;
    const code = (e as { code?: unknown }).code;
    // Only file-system failures are about the output; anything else (a bad block, a changed input) passes through.
    if (typeof code !== 'string') throw e;
    const reason =
      code === 'ENOSPC' ? 'no space left on the device; nothing was written' :
      code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'the folder is not writable' :
      code === 'ENOENT' ? 'the folder does not exist' :
      (e as Error).message;
    throw new OutputError(target, reason, 'io');
  }
}
