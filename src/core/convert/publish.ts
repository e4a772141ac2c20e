import type { FileStamp } from '../../shared/reportData';
import { ModelFormatError } from '../formats/errors';
import { stampOf, unchangedSince } from '../formats/fileStamp';
import { OutputError, writeAtomically, type ByteSink } from '../writers/atomicFile';

/** Where a conversion's output goes and what must hold while it is written. */
export interface PublishJob {
  input: string;
  /** The input as it was when the conversion opened it. */
  before: FileStamp | null;
  output: string;
  force?: boolean;
  signal?: AbortSignal;
}

/** Writes the output and returns the check that the finished file holds what was written. */
export type WriteOutput = (sink: ByteSink) => Promise<(temp: string) => Promise<void>>;

/**
 * The one way a conversion reaches the disk: written to a temporary file while the input stays
 * unchanged, read back and checked against what was produced, then moved into place; never over
 * the input, never half-written.
 */
export async function publishVerified(job: PublishJob, write: WriteOutput): Promise<{ bytesWritten: number; verifySeconds: number }> {
  let check: ((temp: string) => Promise<void>) | undefined;
  let verifyMs = 0;
  const verify = async (temp: string) => {
    const start = performance.now();
    await check!(temp);
    verifyMs = performance.now() - start;
  };
  const bytesWritten = await writeAtomically(
    job.output,
    (sink) =>
      whileUnchanged(job.input, job.before, async () => {
        check = await write(sink);
      }),
    { overwrite: job.force, protect: [job.input], signal: job.signal, verify },
  );
  return { bytesWritten, verifySeconds: verifyMs / 1000 };
}

/** Checks that the input is still as `before` found it, or the output would mix two versions. */
async function checkUnchanged(input: string, before: FileStamp | null): Promise<void> {
  if (await unchangedSince(input, before)) return;
  if ((await stampOf(input)) === null) throw new ModelFormatError(input, 'was deleted or moved while it was being converted; nothing was written');
  throw new ModelFormatError(input, 'the file changed while it was being converted; nothing was written');
}

/**
 * Runs `write` and then checks the input is unchanged. When `write` fails and the input has
 * changed (a truncated file read short), the change is the cause the user needs to hear.
 */
async function whileUnchanged(input: string, before: FileStamp | null, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (e) {
    if (!(e instanceof OutputError)) await checkUnchanged(input, before);
    throw e;
  }
  await checkUnchanged(input, before);
}
