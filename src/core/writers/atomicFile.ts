import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { messageOf, ModelFormatError, ReplensError } from '../formats/errors';
import { producedBytes, verifyFileBytes } from './checksum';

/** Why an output could not be written; the message names the file. */
export class OutputError extends ReplensError {
  constructor(
    readonly file: string,
    reason: string,
    /** `unverified`: the finished file did not read back as it was produced (a RepLens bug); it was not published. */
    readonly code: 'exists' | 'is-input' | 'io' | 'cancelled' | 'unverified' = 'io',
  ) {
    super(file, reason);
    this.name = 'OutputError';
  }
}

const BATCH_BYTES = 1 << 20;
/** Chunks this large are written straight from the caller's bytes; copying them would cost more than the syscall. */
const DIRECT_BYTES = 64 * 1024;

/**
 * Sequential writes with a position, buffered so that small headers do not each cost a syscall.
 *
 * Contract: a sink never holds a caller's bytes after `write()` resolves. A small chunk is
 * copied into the sink's own batch; a large one is written out before `write()` resolves. The
 * caller may reuse or release its buffer at once (the converter hands tensor buffers back to a
 * pool that fills them with the next tensor).
 */
export class ByteSink {
  private readonly batch = new Uint8Array(BATCH_BYTES);
  private batched = 0;
  private written = 0;

  constructor(
    private readonly handle: fs.FileHandle,
    private readonly signal?: AbortSignal,
  ) {}

  /** Bytes written so far (including batched ones). */
  get position(): number {
    return this.written + this.batched;
  }

  async write(bytes: Uint8Array): Promise<void> {
    // writeAtomically puts the target's name on it.
    if (this.signal?.aborted) throw cancelledError('(output)');
    if (bytes.length >= DIRECT_BYTES) {
      await this.flush();
      await this.writeOut(bytes);
      return;
    }
    if (this.batched + bytes.length > BATCH_BYTES) await this.flush();
    this.batch.set(bytes, this.batched);
    this.batched += bytes.length;
  }

  /**
   * Rewrites bytes already written at `position` (a header field known only after its data).
   * They are either still in the batch or already in the file; a range across both never occurs,
   * since one `write()` goes whole to one or the other.
   */
  async patch(position: number, bytes: Uint8Array): Promise<void> {
    if (position + bytes.length > this.position) throw new Error(`patch of ${bytes.length} bytes at ${position} is past the ${this.position} written`);
    if (position >= this.written) {
      this.batch.set(bytes, position - this.written);
      return;
    }
    if (position + bytes.length > this.written) throw new Error(`patch at ${position} spans the file and the batch`);
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, position + done);
      done += bytesWritten;
    }
  }

  async flush(): Promise<void> {
    if (this.batched === 0) return;
    const length = this.batched;
    this.batched = 0;
    await this.writeOut(this.batch.subarray(0, length));
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

const exists = (file: string) =>
  fs.stat(file).then(
    () => true,
    () => false,
  );

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
  const appeared = () =>
    new OutputError(shown, 'was created by someone else while this output was being written; it was left as it is (use --force to replace it)', 'exists');
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
  /**
   * Reads the finished temporary file back and throws if it is not what was produced; it runs
   * once every byte is written, alongside the fsync, and before the file is moved into place, so
   * a file that fails is never seen.
   */
  verify?: (temp: string) => Promise<void>;
}

/** The error of a failed read-back check: the user's input is fine, RepLens is not. */
function unverifiedError(target: string, e: unknown): OutputError {
  const detail = e instanceof ModelFormatError ? e.reason : messageOf(e);
  return new OutputError(
    target,
    `internal error: the finished file did not read back as it was produced (${detail}); nothing was written. This is a bug in RepLens: please report it`,
    'unverified',
  );
}

/**
 * Writes `target` through a temporary file in the same folder, fsyncs it and moves it into
 * place, so a reader never sees a half-written file and a failure leaves nothing behind.
 * Without `overwrite` an existing target is never replaced, even one created meanwhile.
 * With `verify`, the file is published only once it has read back as produced.
 * Cancelling takes effect until the file is moved into place; after that the output is complete.
 */
export async function writeAtomically(target: string, write: (sink: ByteSink) => Promise<unknown>, options: AtomicWriteOptions = {}): Promise<number> {
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
    // The check reads what the file system now holds, which the fsync makes durable: one waits on the
    // disk, the other on the CPU, so they run together. The file is published only once both succeed.
    const [synced, verified] = await Promise.allSettled([handle.sync(), options.verify?.(temp)]);
    if (synced.status === 'rejected') throw synced.reason;
    await handle.close();
    handle = undefined;
    if (verified.status === 'rejected') throw unverifiedError(target, verified.reason);
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
      code === 'ENOSPC'
        ? 'no space left on the device; nothing was written'
        : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
          ? 'the folder is not writable'
          : code === 'ENOENT'
            ? 'the folder does not exist'
            : (e as Error).message;
    throw new OutputError(target, reason, 'io');
  }
}

/** One buffer (a report, a JSON file), written atomically and published once it reads back with the same length and checksum. */
export async function writeBytesAtomically(target: string, bytes: Uint8Array, options: Omit<AtomicWriteOptions, 'verify'> = {}): Promise<number> {
  const produced = producedBytes(bytes);
  return writeAtomically(target, (sink) => sink.write(bytes), { ...options, verify: (temp) => verifyFileBytes(temp, produced) });
}
