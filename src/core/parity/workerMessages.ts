import type { Metrics, Tolerance } from './compare';

/** Messages between the calling process and the inference worker (child_process IPC, 'advanced' serialization). */

/** A model the worker loads: a file that ONNX Runtime opens itself (external data resolves beside it), or encoded bytes. */
export type ModelSource = { path: string } | { bytes: Uint8Array };

export interface Feed {
  name: string;
  dims: number[];
  data: Float32Array;
}

export interface SessionSpec {
  /** Names the model in error messages. */
  label: string;
  source: ModelSource;
  /**
   * Outputs to add for the comparison (block results the graph computes but does not output), as
   * a serialized ModelProto that holds only those graph outputs. Protobuf merges concatenated
   * messages, so the model's bytes followed by these are the model with the outputs added; the
   * source itself stays as it is, and latency is timed on it.
   */
  addedOutputs?: Uint8Array;
}

export interface ParityRequest {
  type: 'parity';
  reference: SessionSpec;
  candidate: SessionSpec;
  /** Each sample feeds every reference input; inputMap renames them for the candidate. */
  samples: Feed[][];
  inputMap: Record<string, string>;
  /** Output pairs to compare, reference name → candidate name. */
  pairs: { reference: string; candidate: string }[];
  tolerance: Tolerance;
  /** Timed runs per model for the latency median (0: none). */
  latencyRuns: number;
}

export interface InferRequest {
  type: 'infer';
  model: SessionSpec;
  feeds: Feed[];
  /** 'disabled' keeps every node as written (no Conv+BN folding). */
  optimization: 'disabled' | 'all';
}

export type WorkerRequest = ParityRequest | InferRequest;

export type WorkerPhase = 'load' | 'sample' | 'latency';

export interface ProgressMessage {
  type: 'progress';
  phase: WorkerPhase;
  /** Which model is being loaded or run (the two run one after the other); none while timing both. */
  model?: 'reference' | 'candidate';
  done: number;
  total: number;
}

export interface ParityReply {
  type: 'parity-result';
  /** In the order of the request's pairs. */
  metrics: Metrics[];
  latencyMs: { reference: number | null; candidate: number | null };
}

export interface InferReply {
  type: 'infer-result';
  outputs: Feed[];
}

export interface ErrorReply {
  type: 'error';
  /** The model's label, or 'worker'. */
  subject: string;
  message: string;
  /** 'runtime': ONNX Runtime itself could not be loaded; the message says what is missing (runtime.ts). */
  code?: 'runtime';
}

export type WorkerMessage = ProgressMessage | ParityReply | InferReply | ErrorReply;
