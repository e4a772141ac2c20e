/**
 * Every message between the extension host and the RepLens webviews.
 * Both sides import this file; nothing else crosses the boundary.
 */

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
  | { type: 'error'; message: string };

export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'reopenAsText' };

const WEBVIEW_MESSAGE_TYPES: ReadonlySet<string> = new Set<WebviewMessage['type']>(['ready', 'reopenAsText']);

/** The host trusts nothing a webview sends: anything not of a known shape is dropped. */
export function parseWebviewMessage(value: unknown): WebviewMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !WEBVIEW_MESSAGE_TYPES.has(type)) return undefined;
  return { type } as WebviewMessage;
}
