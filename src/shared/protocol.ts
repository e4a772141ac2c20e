/**
 * Every message between the extension host and the RepLens webviews.
 * Both sides import this file; nothing else crosses the boundary.
 */
// Type-only: the report's shape is defined once, beside the code that builds it; nothing is bundled from core.
import type { Int8Report } from './int8Data';
import type { ReportData } from './reportData';

/** What the model editor shows about the file it has open. */
export interface FileOverview {
  fileName: string;
  sizeBytes: number;
  /** Recognised from the first bytes: 'torch-zip' | 'torch-legacy' | 'onnx' | 'safetensors' | 'text' | 'unknown'. */
  kind: string;
  kindLabel: string;
  /** Present once the file was read as a model. */
  structure?: StructureSummary;
  /** Why the file could not be read as a model, when it looked like one. */
  readError?: string;
}

export interface StageSummary {
  name: string;
  blocks: number;
  inChannels: number;
  outChannels: number;
  /** e.g. 'train' | 'deploy' | 'mixed' */
  form: string;
  warnings: number;
}

export interface StructureSummary {
  /** For a training checkpoint with several sets of weights: the slot read, why, and every slot there is. */
  weights?: { key: string; reason: string; slots: string[] };
  family: string;
  architecture: string;
  form: string;
  tensors: number;
  paramsTotal: number;
  paramsAfterFusion: number;
  stages: StageSummary[];
  warnings: string[];
}

/**
 * A report as the host sends it: its graphs, most of a large report (megabytes of nodes and edge
 * points), as JSON bytes. On its way into the webview a message is copied at every frame it passes
 * through — the workbench, then the webview's outer and inner frame — and objects are cloned one by
 * one, which for a 5,000-node graph held the page for hundreds of ms; VS Code transfers typed arrays
 * instead, without copying them. The rest stays an object: it holds NaN and ±Infinity, which JSON
 * turns into null.
 */
export interface PackedReport {
  facts: Omit<ReportData, 'before' | 'after'>;
  /** ASCII JSON of { before, after }; a plain Uint8Array, since VS Code knows typed arrays by their constructor's name (a Node Buffer would go as JSON). */
  graphs: Uint8Array;
}

/** JSON.stringify with every non-ASCII character escaped: one '×' in a label makes the browser decode and parse the whole text the slow way. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function packReport({ before, after, ...facts }: ReportData): PackedReport {
  return { facts, graphs: new TextEncoder().encode(asciiJson({ before, after })) };
}

export function unpackReport(packed: PackedReport): ReportData {
  const { before, after } = JSON.parse(new TextDecoder().decode(packed.graphs)) as Pick<ReportData, 'before' | 'after'>;
  return { ...packed.facts, before, after };
}

export type HostMessage =
  | { type: 'overview'; overview: FileOverview }
  | { type: 'error'; message: string }
  /** The finished report for the report view, and the id it is stored under on disk (null if it could not be stored). */
  | { type: 'report'; report: PackedReport; storedAs: string | null }
  /** A restored report view whose report is no longer stored: why, and the view offers to run the check again. */
  | { type: 'reportUnavailable'; message: string }
  /** What the host is doing while the report view waits. */
  | { type: 'reportProgress'; message: string }
  /** Select a block in the report view, as if the user had clicked it. */
  | { type: 'revealBlock'; block: string }
  /** The report's INT8 tab: measuring, measured, or why it could not be. */
  | { type: 'int8'; state: Int8State };

/** Where the INT8 measurement of a report's model stands. */
export type Int8State = { status: 'running'; message: string } | { status: 'done'; report: Int8Report } | { status: 'error'; message: string };

export type ReportExportFormat = 'json' | 'markdown';

/** Model-editor buttons: each runs the RepLens command of that name on the editor's own file. */
export type EditorAction = 'convertToDeploy' | 'checkParity' | 'showStructure' | 'openReport';

export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'reopenAsText' }
  | { type: 'runAction'; action: EditorAction }
  /** The user picked which of a training checkpoint's weights ('model', 'ema', …) RepLens reads. */
  | { type: 'chooseWeights'; key: string }
  /** The user selected a block in the report; the host may reveal it in the structure tree. */
  | { type: 'selectBlock'; block: string }
  /** The user asked for the report as a file; the host picks the path and writes it. */
  | { type: 'exportReport'; format: ReportExportFormat }
  /** The user asked to run the check behind the report again (its stored data is gone); the host knows which files. */
  | { type: 'rerunReport' }
  /** The user asked to measure what INT8 costs the report's model (the INT8 tab). */
  | { type: 'measureInt8' };

/** Which report a report view shows: the stored report's id and the files it is about. */
export interface ReportRef {
  /** null when the report could not be stored. */
  id: string | null;
  input: string;
  /** The deploy file compared with, or null when the deploy form was fused in memory. */
  output: string | null;
}

/**
 * What the report webview keeps with setState: which report it shows and its UI state, never the
 * report itself (the host stores that on disk). VS Code hands it to the host's panel serializer
 * on restore.
 */
export interface SavedReportState {
  report: ReportRef;
  /** Read only by the webview. */
  ui: unknown;
}

/** Stored report ids and file paths longer than this are not real; refusing them keeps lookups and messages bounded. */
const MAX_ID_LENGTH = 100;
const MAX_PATH_LENGTH = 4096;

/** Checkpoint keys longer than this are not real. */
const MAX_SLOT_LENGTH = 200;

/** Longer block names than this are not from a real model; refusing them keeps log lines and lookups bounded. */
export const MAX_BLOCK_NAME_LENGTH = 500;

const EDITOR_ACTIONS: ReadonlySet<string> = new Set<EditorAction>(['convertToDeploy', 'checkParity', 'showStructure', 'openReport']);

const EXPORT_FORMATS: ReadonlySet<string> = new Set<ReportExportFormat>(['json', 'markdown']);

/** The host trusts nothing a webview sends: anything not of a known shape is dropped, and only known fields are copied. */
export function parseWebviewMessage(value: unknown): WebviewMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as { type?: unknown; block?: unknown; format?: unknown; action?: unknown };
  switch (v.type) {
    case 'ready':
    case 'reopenAsText':
    case 'rerunReport':
    case 'measureInt8':
      return { type: v.type };
    case 'runAction':
      return typeof v.action === 'string' && EDITOR_ACTIONS.has(v.action) ? { type: 'runAction', action: v.action as EditorAction } : undefined;
    case 'chooseWeights': {
      const key = (value as { key?: unknown }).key;
      return typeof key === 'string' && key.length > 0 && key.length <= MAX_SLOT_LENGTH ? { type: 'chooseWeights', key } : undefined;
    }
    case 'selectBlock':
      return typeof v.block === 'string' && v.block.length <= MAX_BLOCK_NAME_LENGTH ? { type: 'selectBlock', block: v.block } : undefined;
    case 'exportReport':
      return typeof v.format === 'string' && EXPORT_FORMATS.has(v.format) ? { type: 'exportReport', format: v.format as ReportExportFormat } : undefined;
    default:
      return undefined;
  }
}

/**
 * The report a saved report-view state refers to. The state was written by the webview, so the
 * host checks it like a message; the report store then accepts only ids it made.
 */
export function parseSavedReportRef(state: unknown): ReportRef | undefined {
  if (typeof state !== 'object' || state === null) return undefined;
  const ref = (state as { report?: unknown }).report;
  if (typeof ref !== 'object' || ref === null) return undefined;
  const { id, input, output } = ref as Record<string, unknown>;
  const path = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_PATH_LENGTH;
  if (!(id === null || (typeof id === 'string' && id.length <= MAX_ID_LENGTH))) return undefined;
  if (!path(input) || !(output === null || path(output))) return undefined;
  return { id, input, output };
}
