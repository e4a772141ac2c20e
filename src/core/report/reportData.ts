/**
 * Everything the report view shows about one conversion: both graphs (laid out),
 * per-block facts and errors, per-output errors, and per-form costs. Plain data,
 * so it can be posted to a webview, exported as JSON, or rendered as Markdown.
 */
import type { LoadNote } from '../convert/loadNote';
import type { FileStamp } from '../formats/fileStamp';
import type { ErrorMeasures, Verdict } from '../parity/compare';

export interface GraphNodeView {
  id: string;
  /** Text on the node, e.g. 'Conv 3×3' or 'BatchNormalization'. */
  label: string;
  op: string;
  /** The block this node belongs to, if any — the key that maps before ↔ after. */
  block?: string;
  stage?: string;
  x: number;
  y: number;
  width: number;
  height: number;
  /** Shapes and attributes, for the tooltip. */
  detail?: string;
}

export interface GraphEdgeView {
  from: string;
  to: string;
  points: { x: number; y: number }[];
}

export interface GraphGroupView {
  stage: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface GraphView {
  nodes: GraphNodeView[];
  edges: GraphEdgeView[];
  groups: GraphGroupView[];
  width: number;
  height: number;
}

export interface KernelStats {
  /** Largest |w| in each output channel of the fused kernel. */
  channelMaxAbs: number[];
  /** How far the largest channel stands out: max(channelMaxAbs) / median(channelMaxAbs). */
  outlierRatio: number;
  maxAbs: number;
}

export type BlockParity = Pick<Verdict, 'maxAbs' | 'maxRel' | 'cosine' | 'pass'>;

export interface BlockReport {
  name: string;
  stage: string;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number | null;
  strideInferred: boolean;
  groups: number;
  /** Branches before fusion, e.g. '3×3 conv + BN'. */
  branches: string[];
  paramsBefore: number;
  paramsAfter: number;
  kernelStats?: KernelStats;
  parity?: BlockParity;
  warnings: string[];
}

export interface OutputParity extends ErrorMeasures {
  name: string;
  top1Agreement: number | null;
}

/** What a form costs, as the report shows it (parity's FormStats, plus the file's size). */
export interface FormCosts {
  latencyMs: number | null;
  params: number;
  macs: number;
  nodes: number;
  fileBytes: number | null;
}

export interface ReportData {
  /** The model file the report is about, and the deploy file, when one was written. */
  input: string;
  output: string | null;
  /** Both files as they were when the report read them (null: no deploy file); a change to either makes the report out of date. */
  stamps: { input: FileStamp | null; output: FileStamp | null };
  /** What the deploy file is and the Python lines that load it; only in a report about a file RepLens just wrote. */
  load?: LoadNote;
  family: string;
  architecture: string;
  /** For a training checkpoint that holds several sets of weights: the one the report is about, why, and the others. */
  weights?: { key: string; reason: string; others: string[] };
  /** null when parity could not run (the error says why). */
  pass: boolean | null;
  parityError: string | null;
  atol: number;
  rtol: number;
  /** Why atol and rtol are what they are (ParityResult.toleranceBasis); null when parity did not run. */
  toleranceBasis: string | null;
  /** What to do about a FAIL (ParityResult.advice), or about a check that could not run. */
  advice: string | null;
  inputs: number;
  shape: number[];
  outputs: OutputParity[];
  blocks: BlockReport[];
  forms: { train: FormCosts; deploy: FormCosts };
  before: GraphView;
  after: GraphView;
  createdAt: string;
}
