import { basename } from 'node:path';
import { formatBytes } from '../../shared/format';

/**
 * Every error RepLens reports about what it was given: what it is about (a file, a block, or two
 * files 'a vs b') and why. `message` is for logs (the subject as given, then the reason); what a
 * person is shown comes from `userMessage`, which puts the reason first and a file by its base
 * name. The CLI and the extension tell these from bugs by this class alone.
 */
export class ReplensError extends Error {
  constructor(
    readonly subject: string,
    readonly reason: string,
    /** Whether `subject` is a file, or files 'a vs b' (shown by base name), rather than a block's name (shown as it is). */
    readonly subjectIsFiles = true,
  ) {
    super(`${subject}: ${reason}`);
  }
}

/** A file could not be read as a model. Always names the file so messages are actionable. */
export class ModelFormatError extends ReplensError {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(file, reason);
    this.name = 'ModelFormatError';
  }
}

/**
 * The reason every reader gives for a file that ends before its own layout says it does: what
 * happened first, where it stopped, the reader's evidence, and what to do.
 */
export function truncatedReason(size: number, inside: string, evidence: string): string {
  return `the file is truncated: it ends at ${formatBytes(size)}, inside ${inside} (${evidence}); re-save or re-download it`;
}

/** An error that names a file: ModelFormatError and the writers' OutputError. */
interface FileError {
  file: string;
  reason: string;
}

function namesFile(e: unknown): e is FileError {
  return e instanceof Error && typeof (e as Partial<FileError>).file === 'string' && typeof (e as Partial<FileError>).reason === 'string';
}

/** The file an error is about, as the code that threw it named it (the full path, for a detail line or a log). */
export function errorFile(e: unknown): string | undefined {
  if (namesFile(e)) return e.file;
  // A parity error about one file (not 'a vs b', nor a block) names it as its subject.
  return namesSubject(e) && !e.subject.includes(' vs ') && /[\\/]/.test(e.subject) ? e.subject : undefined;
}

/**
 * An error as a person reads it, in a toast, an editor or a terminal line: the reason first and a
 * file by its base name. A file the surrounding text already names (`about`) is left out:
 * "could not convert a.pth: the file is truncated: …", never "could not convert a.pth: /home/…/a.pth: …".
 * The one place where errors become user text; `message` keeps the full path for logs.
 */
export function userMessage(e: unknown, about?: string): string {
  if (namesFile(e)) return about !== undefined && e.file === about ? e.reason : `${basename(e.file)}: ${e.reason}`;
  // A parity error's subject is a file, two files ('a vs b') or a block.
  if (namesSubject(e))
    return about !== undefined && e.subject === about
      ? e.reason
      : `${e.subject
          .split(' vs ')
          .map((s) => basename(s))
          .join(' vs ')}: ${e.reason}`;
  return messageOf(e);
}

/** The message of anything thrown (an Error's message, or the value as text). */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Parity's and the graph builder's errors: a file, two files ('a vs b') or a block. */
function namesSubject(e: unknown): e is ReplensError {
  return e instanceof ReplensError && e.subjectIsFiles;
}
