/**
 * A file's size and modification time: a conversion checks that its input still has the stamp it
 * had when reading began, and a stored report is shown again only while the files it is about
 * still carry the stamps they had when it was made.
 */
import { promises as fs } from 'node:fs';
import type { FileStamp } from '../../shared/reportData';

/** The stamp of `file` now, or null when there is no such file. */
export async function stampOf(file: string): Promise<FileStamp | null> {
  return fs.stat(file).then(
    (s) => ({ bytes: s.size, modifiedMs: s.mtimeMs }),
    () => null,
  );
}

/** Whether `file` is still as `stamp` found it (a file that is gone is not). */
export async function unchangedSince(file: string, stamp: FileStamp | null): Promise<boolean> {
  const now = await stampOf(file);
  return now !== null && stamp !== null && now.bytes === stamp.bytes && now.modifiedMs === stamp.modifiedMs;
}

/** Whether the files a report is about (see ReportData.stamps) are all still as it found them. */
export async function filesUnchanged(about: {
  input: string;
  output: string | null;
  stamps: { input: FileStamp | null; output: FileStamp | null };
}): Promise<boolean> {
  return (await unchangedSince(about.input, about.stamps.input)) && (about.output === null || (await unchangedSince(about.output, about.stamps.output)));
}
