/**
 * Reports kept on disk, one JSON file each with a small about-file beside it, so a report panel
 * VS Code restores after a reload, or Open Report, can show a report again without recomputing
 * it. The webview saves only a report's id: VS Code serializes a webview's saved state on every
 * change, and a report of a 5,000-node graph is megabytes.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ReplensError } from '../formats/errors';
import { writeBytesAtomically } from '../writers/atomicFile';
import { filesUnchanged } from '../formats/fileStamp';
import type { ReportData } from '../../shared/reportData';

/** How many reports are kept (besides those still shown); older ones are deleted. */
export const DEFAULT_KEEP = 20;

const ID = /^[0-9a-z]{1,12}-[0-9a-f]{8}$/;
const SUFFIX = '.report.json';
/** Beside each report, what it is about, so finding a file's report does not read megabytes of graphs. */
const ABOUT_SUFFIX = '.about.json';

/** A stored report's files and their stamps (see ReportData.stamps). */
export interface StoredReportAbout {
  id: string;
  input: string;
  output: string | null;
  stamps: ReportData['stamps'];
}

/** A stored report could not be read; the message names the file and says why. */
export class ReportStoreError extends ReplensError {
  constructor(
    readonly file: string,
    reason: string,
    readonly code: 'missing' | 'unreadable' | 'corrupt' | 'bad-id',
  ) {
    super(file, reason);
    this.name = 'ReportStoreError';
  }
}

// JSON has no NaN or ±Infinity, which parity results and kernel statistics can hold; they are
// stored as {"$number": "NaN"} so a restored report says NaN where the first one did.
const NON_FINITE = '$number';
const replacer = (_key: string, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? { [NON_FINITE]: String(v) } : v);
function reviver(_key: string, v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  const keys = Object.keys(v);
  const text = (v as Record<string, unknown>)[NON_FINITE];
  return keys.length === 1 && (text === 'NaN' || text === 'Infinity' || text === '-Infinity') ? Number(text) : v;
}

const isGraph = (g: unknown) =>
  typeof g === 'object' && g !== null && ['nodes', 'edges', 'groups'].every((k) => Array.isArray((g as Record<string, unknown>)[k]));

/** A load note as the report view draws it: two sentences and the code lines. */
function isLoadNote(x: unknown): boolean {
  const note = x as Partial<Record<string, unknown>> | null;
  return (
    typeof note === 'object' &&
    note !== null &&
    typeof note.what === 'string' &&
    typeof note.how === 'string' &&
    Array.isArray(note.code) &&
    note.code.every((line) => typeof line === 'string')
  );
}

/** The fields the report view cannot draw without, and the load note's when there is one. */
function isReport(value: unknown): value is ReportData {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Partial<Record<keyof ReportData, unknown>>;
  return (
    typeof r.input === 'string' &&
    Array.isArray(r.blocks) &&
    Array.isArray(r.outputs) &&
    isGraph(r.before) &&
    isGraph(r.after) &&
    typeof r.forms === 'object' &&
    r.forms !== null &&
    (r.load === undefined || isLoadNote(r.load))
  );
}

/** A file stamp as an about-file holds it: null (no file) or its size and modification time. */
function isStamp(x: unknown): boolean {
  if (x === null) return true;
  const stamp = x as Partial<Record<string, unknown>> | undefined;
  return typeof stamp === 'object' && typeof stamp.bytes === 'number' && typeof stamp.modifiedMs === 'number';
}

/** The ids of the files in `names` that end in `suffix`, newest first (ids begin with their time). */
function idsNewestFirst(names: readonly string[], suffix: string): string[] {
  const ids = names.filter((n) => n.endsWith(suffix) && ID.test(n.slice(0, -suffix.length))).map((n) => n.slice(0, -suffix.length));
  const time = (id: string) => parseInt(id.slice(0, id.indexOf('-')), 36);
  return ids.sort((a, b) => time(b) - time(a) || (a < b ? 1 : -1));
}

export class ReportStore {
  private lastTime = 0;

  constructor(
    readonly folder: string,
    private readonly keep = DEFAULT_KEEP,
  ) {}

  /** The file of a report id; refuses anything that is not an id this store made (the id comes back from a webview). */
  fileOf(id: string): string {
    if (!ID.test(id)) throw new ReportStoreError(this.folder, `'${id.slice(0, 40)}' is not a stored report's id`, 'bad-id');
    return path.join(this.folder, `${id}${SUFFIX}`);
  }

  /** Writes the report and deletes the oldest beyond the kept number, never one in `inUse`; returns its id. */
  async save(report: ReportData, inUse: Iterable<string> = []): Promise<string> {
    // Time first, so ids sort by age (strictly, within this store); the random part keeps other windows' ids apart.
    this.lastTime = Math.max(Date.now(), this.lastTime + 1);
    const id = `${this.lastTime.toString(36)}-${randomBytes(4).toString('hex')}`;
    await fs.mkdir(this.folder, { recursive: true });
    const text = JSON.stringify(report, replacer);
    await writeBytesAtomically(this.fileOf(id), Buffer.from(text, 'utf8'), { overwrite: true });
    const about: StoredReportAbout = { id, input: report.input, output: report.output, stamps: report.stamps };
    await writeBytesAtomically(this.aboutFileOf(id), Buffer.from(JSON.stringify(about), 'utf8'), { overwrite: true });
    await this.prune([...inUse, id]);
    return id;
  }

  async load(id: string): Promise<ReportData> {
    const file = this.fileOf(id);
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (e) {
      if ((e as { code?: unknown }).code === 'ENOENT')
        throw new ReportStoreError(file, `the stored report is gone (RepLens keeps the latest ${this.keep})`, 'missing');
      throw new ReportStoreError(file, `the stored report cannot be read: ${(e as Error).message}`, 'unreadable');
    }
    let value: unknown;
    try {
      value = JSON.parse(text, reviver);
    } catch (e) {
      throw new ReportStoreError(file, `the stored report is not valid JSON (${(e as Error).message})`, 'corrupt');
    }
    if (!isReport(value)) throw new ReportStoreError(file, 'the stored report lacks fields the report view needs', 'corrupt');
    return value;
  }

  /**
   * The newest stored report about `file` (as its input or its deploy file) whose files are all
   * unchanged since it was made, or undefined. A report whose files changed is not wrong about
   * those files as they were, but it is not about the file the user has now.
   */
  async latestCurrent(file: string): Promise<StoredReportAbout | undefined> {
    for (const id of idsNewestFirst(await this.names(), SUFFIX)) {
      const about = await this.about(id);
      if (!about || (about.input !== file && about.output !== file)) continue;
      if (await filesUnchanged(about)) return about;
    }
    return undefined;
  }

  /** A report's about-file, or undefined when it is missing or not one this store wrote (such a report is never found by file). */
  private async about(id: string): Promise<StoredReportAbout | undefined> {
    try {
      const v = JSON.parse(await fs.readFile(this.aboutFileOf(id), 'utf8')) as Partial<StoredReportAbout>;
      const ok =
        v.id === id &&
        typeof v.input === 'string' &&
        (v.output === null || typeof v.output === 'string') &&
        isStamp(v.stamps?.input) &&
        isStamp(v.stamps?.output);
      return ok ? (v as StoredReportAbout) : undefined;
    } catch {
      return undefined;
    }
  }

  private aboutFileOf(id: string): string {
    return this.fileOf(id).slice(0, -SUFFIX.length) + ABOUT_SUFFIX;
  }

  private names(): Promise<string[]> {
    return fs.readdir(this.folder).catch(() => [] as string[]);
  }

  /** Deletes all but the `keep` newest reports (by the time in their ids), except those in `inUse`; returns the ids deleted. */
  async prune(inUse: Iterable<string> = []): Promise<string[]> {
    const shown = new Set(inUse);
    const names = await this.names();
    const reports = idsNewestFirst(names, SUFFIX);
    const doomed = reports.slice(this.keep).filter((id) => !shown.has(id));
    // About-files whose report is gone too (a deletion cut short): they would find nothing.
    const orphans = idsNewestFirst(names, ABOUT_SUFFIX).filter((id) => !reports.includes(id));
    await Promise.all(
      [...doomed.flatMap((id) => [this.fileOf(id), this.aboutFileOf(id)]), ...orphans.map((id) => this.aboutFileOf(id))].map((file) =>
        fs.rm(file, { force: true }),
      ),
    );
    return doomed;
  }
}
