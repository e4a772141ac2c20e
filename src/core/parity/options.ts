/** What a parity check is asked and what it answers, and the options' own checks. */
import type { Topology } from '../graph/topology';
import type { WeightsChoice } from '../formats/modelFile';
import type { OnnxGraph } from '../formats/onnxModel';
import type { StructureOptions } from '../model/buildStructure';
import type { Verdict } from '../../shared/reportData';
import type { Metrics } from './compare';
import { ParityError } from './errors';
import type { WorkerPhase } from './workerMessages';

// Latency is timed only when asked for: it needs both models prepared again for speed, which on a large model costs more than the check.
export const DEFAULTS = { inputs: 4, seed: 0, atol: 1e-4, rtol: 1e-3, latencyRuns: 0, size: 224, blockwiseSize: 32 } as const;

export interface ParityProgress {
  phase: 'build' | WorkerPhase;
  done: number;
  total: number;
  message: string;
}

/** StructureOptions: what the file cannot say about its blocks (e.g. that its QARepVGG blocks are QARepVGGBlockV2). */
export interface ParityOptions extends StructureOptions {
  /** Random input samples (default 4). */
  inputs?: number;
  /**
   * [batch, channels, height, width] of the checked part's input (see ParityResult.shapeUse): for a
   * graph RepLens builds, the first block's input, whose channels it must have (an explained error
   * otherwise); blockwise graphs take batch, height and width from it for every block.
   */
  shape?: readonly number[];
  seed?: number;
  /** A .npy array used as the one input instead of random samples. */
  inputFile?: string;
  atol?: number;
  rtol?: number;
  /** Timed runs per form for the latency median (default 0: not timed). */
  latencyRuns?: number;
  /** Replaces every BN eps, in train-form graphs and in fusion alike. */
  eps?: number;
  /** The checkpoint key to read the checked file's weights from (default: the one the model's own tools read). */
  weights?: string;
  timeoutSeconds?: number;
  signal?: AbortSignal;
  onProgress?: (p: ParityProgress) => void;
  /** See ChildOptions.workerPath. */
  workerPath?: string;
  /** Each deploy-form block's kernel in the candidate, by the block's shown name, as the candidate's graph gets it. */
  onBlockKernel?: (block: string, kernel: ArrayLike<number>, outChannels: number) => void;
  /** The two graphs, once built and before they run (their weights are in the check's temporary folder, removed after). */
  onGraphs?: (graphs: { reference: RanGraph; candidate: RanGraph }) => void;
}

/** A graph a check ran: the file's own ONNX graph (its blocks perhaps fused in place), or one RepLens built from the file's blocks. */
export interface RanGraph {
  graph: OnnxGraph;
  builtFromBlocks: boolean;
}

export interface OutputResult extends Metrics {
  name: string;
  /** The candidate's name when it differs (outputs matched by position). */
  candidateName?: string;
}

export interface BlockResult extends Verdict {
  name: string;
}

export interface FormStats {
  /** The file this form came from, and how ('train form', 'deploy form, fused in memory', 'ONNX as is', ...). */
  file: string;
  source: string;
  /** Median of the timed runs with ORT's default optimizations; null when none were asked for. */
  latencyMs: number | null;
  params: number;
  macs: number | null;
  nodes: number;
}

/**
 * The JSON a parity check produces. `forms.train` is the reference (the train form, or the first
 * file), `forms.deploy` the candidate. Numbers that are NaN (non-finite outputs) are null in JSON.
 */
export interface ParityResult {
  pass: boolean;
  inputs: number;
  atol: number;
  rtol: number;
  /** Why atol and rtol are what they are (the deploy weights' dtype, see tolerance.ts). */
  toleranceBasis: string;
  /** For a FAIL or a check that could not compare: what to do next. */
  advice: string | null;
  outputs: OutputResult[];
  blocks: BlockResult[];
  forms: { train: FormStats; deploy: FormStats };
  topology: Topology | 'onnx';
  /**
   * What part of the model the check runs, as one plain sentence ('checks the 3 RepConv blocks, each on
   * its own input; the detector's other layers are not in the file as a graph'): a checkpoint holds
   * weights, not the code between its layers, so RepLens runs its blocks (and a classifier's head).
   */
  scope: string;
  /** How the input shape (--shape) is used for that part: whose input it describes, with which channels. */
  shapeUse: string;
  /** The reference's input shapes, by input name. */
  shapes: Record<string, number[]>;
  seed: number | null;
  /** Which of a training checkpoint's weights were checked, and why. */
  weights?: WeightsChoice;
  notes: string[];
}

export function requireInput(condition: boolean, subject: string, reason: string): asserts condition {
  if (!condition) throw new ParityError(subject, reason, 'input');
}

/** Building or fusing the graphs of a large model takes seconds: a cancel is heard between blocks, not only once inference runs. */
export function throwIfCancelled(options: ParityOptions, subject: string): void {
  if (options.signal?.aborted) throw new ParityError(subject, 'cancelled', 'cancelled');
}

export function validate(options: ParityOptions): void {
  const positiveInt = (v: number | undefined, name: string, min = 1) =>
    requireInput(v === undefined || (Number.isInteger(v) && v >= min), 'options', `${name} must be an integer >= ${min}`);
  positiveInt(options.inputs, 'inputs');
  positiveInt(options.latencyRuns, 'latencyRuns', 0);
  for (const [name, v] of [
    ['atol', options.atol],
    ['rtol', options.rtol],
    ['eps', options.eps],
  ] as const) {
    requireInput(v === undefined || (Number.isFinite(v) && v >= 0), 'options', `${name} must be a non-negative number`);
  }
  requireInput(
    options.seed === undefined || (Number.isInteger(options.seed) && options.seed >= 0 && options.seed < 2 ** 32),
    'options',
    'seed must be an integer in [0, 2^32)',
  );
  requireInput(
    options.shape === undefined || (options.shape.length === 4 && options.shape.every((d) => Number.isInteger(d) && d >= 1)),
    'options',
    'shape must be 4 positive integers: batch, channels, height, width',
  );
}
