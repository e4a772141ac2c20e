/**
 * Everything the report view shows about one conversion: both graphs (laid out),
 * per-block facts and errors, per-output errors, and per-form costs. Plain data,
 * so it can be posted to a webview, exported as JSON, or rendered as Markdown. The host builds it
 * (src/core/report) and the webview renders it: both import these types from here, and this file
 * imports nothing.
 */

/** How far one tensor is from another: the numbers every comparison reports, wherever it is shown. */
export interface ErrorMeasures {
  maxAbs: number;
  maxRel: number;
  meanAbs: number;
  /** Cosine similarity of the two outputs as flat vectors (1 when both are all zeros). */
  cosine: number;
}

/** A comparison's verdict on one tensor, with what decided it. */
export interface Verdict extends ErrorMeasures {
  pass: boolean;
  /** The largest scale (reference RMS, at least 1) used over the samples: atol is in these units. */
  scale: number;
  nonFinite: { reference: number; candidate: number };
  /** Why the outputs could not be compared element by element (e.g. different shapes). */
  error?: string;
}

/** What a written deploy file is and the Python lines that load it (core/convert/loadNote.ts). */
export interface LoadNote {
  /** The family the lines are for (a FamilyId); 'mixed' when the blocks belong to several, 'onnx' for an ONNX output. */
  family: string;
  /** What the written file is, and what it is not (the module objects of a whole-module input). */
  what: string;
  /** How the family's own code loads it, one sentence that the code lines follow. */
  how: string;
  /** Python lines that load it into the family's own deploy model. */
  code: string[];
  /** The family's source these lines follow. */
  basis: string;
}

/** A file's size and modification time when it was read (core/formats/fileStamp.ts). */
export interface FileStamp {
  bytes: number;
  modifiedMs: number;
}

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
