/**
 * Every message between the extension host and the RepLens webviews.
 * Both sides import this file; nothing else crosses the boundary.
 */
// Type-only: the report's shape is defined once, beside the code that builds it; nothing is bundled from core.
import type { ReportData } from '../core/report/reportData';

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
  family: string;
  architecture: string;
  form: string;
  tensors: number;
  paramsTotal: number;
  paramsAfterFusion: number;
  stages: StageSummary[];
  warnings: string[];
}

export type HostMessage =
  | { type: 'overview'; overview: FileOverview }
  | { type: 'error'; message: string }
  /** The finished report for the report view. */
  | { type: 'report'; report: ReportData }
  /** What the host is doing while the report view waits. */
  | { type: 'reportProgress'; message: string }
  /** Select a block in the report view, as if the user had clicked it. */
  | { type: 'revealBlock'; block: string };

export type ReportExportFormat = 'json' | 'markdown';

/** Model-editor buttons: each runs the RepLens command of that name on the editor's own file. */
export type EditorAction = 'convertToDeploy' | 'checkParity' | 'showStructure';

export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'reopenAsText' }
  | { type: 'runAction'; action: EditorAction }
  /** The user selected a block in the report; the host may reveal it in the structure tree. */
  | { type: 'selectBlock'; block: string }
  /** The user asked for the report as a file; the host picks the path and writes it. */
  | { type: 'exportReport'; format: ReportExportFormat };

/** Longer block names than this are not from a real model; refusing them keeps log lines and lookups bounded. */
export const MAX_BLOCK_NAME_LENGTH = 500;

const EDITOR_ACTIONS: ReadonlySet<string> = new Set<EditorAction>(['convertToDeploy', 'checkParity', 'showStructure']);

const EXPORT_FORMATS: ReadonlySet<string> = new Set<ReportExportFormat>(['json', 'markdown']);

/** The host trusts nothing a webview sends: anything not of a known shape is dropped, and only known fields are copied. */
export function parseWebviewMessage(value: unknown): WebviewMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as { type?: unknown; block?: unknown; format?: unknown; action?: unknown };
  switch (v.type) {
    case 'ready':
    case 'reopenAsText':
      return { type: v.type };
    case 'runAction':
      return typeof v.action === 'string' && EDITOR_ACTIONS.has(v.action) ? { type: 'runAction', action: v.action as EditorAction } : undefined;
    case 'selectBlock':
      return typeof v.block === 'string' && v.block.length <= MAX_BLOCK_NAME_LENGTH ? { type: 'selectBlock', block: v.block } : undefined;
    case 'exportReport':
      return typeof v.format === 'string' && EXPORT_FORMATS.has(v.format) ? { type: 'exportReport', format: v.format as ReportExportFormat } : undefined;
    default:
      return undefined;
  }
}
