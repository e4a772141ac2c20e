import * as path from 'node:path';
import type { FileStamp, LoadNote } from '../../shared/reportData';
import type { BufferPool } from '../formats/bufferPool';
import { splitModelName } from '../formats/modelFileNames';
import type { ModelFile, WeightsChoice } from '../formats/modelFile';
import type { OnnxBlockOutput } from '../fuse/onnxFusion';
import type { Topology } from '../graph/topology';
import type { StructureOptions } from '../model/buildStructure';
import type { Block } from '../model/structure';
import type { PlanOptions } from './deployPlan';

/** What a conversion is asked, what it answers, and where its output goes by default. */

/** ONNX models are rewritten as ONNX graphs; checkpoints become PyTorch or safetensors files, or an ONNX graph built for them. */
export type OutputFormat = 'pth' | 'safetensors' | 'onnx';

/** StructureOptions: what the file cannot say about its blocks (e.g. that its QARepVGG blocks are QARepVGGBlockV2). */
export interface ConvertOptions extends Omit<PlanOptions, 'onBlock'>, StructureOptions {
  output?: string;
  /** The checkpoint key to read the weights from (default: the one the model's own tools read). */
  weights?: string;
  format?: OutputFormat;
  /** Write a plain state dict even when the input holds a pickled model (whose form is kept by default). */
  stateDict?: boolean;
  /** Replace an existing output. */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, block: Block) => void;
}

export interface ConvertResult {
  input: string;
  output: string;
  format: OutputFormat;
  blocksFused: number;
  blocksAlreadyDeploy: number;
  paramsBefore: number;
  /** Parameters of the output; for an ONNX graph built from a checkpoint, of the graph (see `built`). */
  paramsAfter: number;
  bytesWritten: number;
  seconds: number;
  /** Of `seconds`: reading the finished file back and checking it against what was produced. */
  verifySeconds: number;
  /** BN eps values used, with where they came from. */
  eps: { value: number; source: string; blocks: number }[];
  droppedPrefix?: string;
  /** Set when the output is the input's pickled model in deploy form (not a state dict): its class and the checkpoint key holding it. */
  module?: { className: string; key?: string };
  /** Which of a training checkpoint's weights were converted, and why. */
  weights?: WeightsChoice;
  /** ONNX input: node and initializer counts before and after, and where each block's result is in both graphs. */
  graph?: {
    nodes: { before: number; after: number };
    initializers: { before: number; after: number };
    blockOutputs: OnnxBlockOutput[];
  };
  /**
   * A checkpoint written as ONNX: the graph built for it (a whole classifier, or the backbone's blocks,
   * which leaves out the file's other layers), and what to know about it.
   */
  built?: { topology: Topology; notes: string[] };
  /** What the written file is and the lines that load it, for the blocks' family (see loadNote). */
  load: LoadNote;
  warnings: string[];
}

/** A conversion under way: the input opened once, and what every kind of conversion needs of it. */
export interface ConvertJob {
  model: ModelFile;
  options: ConvertOptions;
  before: FileStamp | null;
  pool: BufferPool;
  /** performance.now() when the conversion began. */
  started: number;
}

/** The output format when none is asked for: safetensors and ONNX stay as they are, everything else becomes a PyTorch checkpoint. */
export function sameFormatAs(inputFormat: string): OutputFormat {
  return inputFormat === 'safetensors' || inputFormat === 'onnx' ? inputFormat : 'pth';
}

export const DEFAULT_OUTPUT_NAME = '{stem}.deploy{ext}';

/**
 * The output path beside the input, from a name template with `{stem}` and `{ext}`
 * (default `<stem>.deploy<ext>`); the extension follows the output format.
 */
export function defaultOutputPath(input: string, format: OutputFormat, template = DEFAULT_OUTPUT_NAME): string {
  const { stem, suffix } = splitModelName(input);
  const ext = format === 'safetensors' ? '.safetensors' : format === 'onnx' ? '.onnx' : suffix === '.safetensors' || suffix === '.onnx' ? '.pth' : suffix;
  const name = template.replaceAll('{stem}', stem).replaceAll('{ext}', ext);
  if (name === '' || name.includes('/') || name.includes('\\')) throw new Error(`output name template '${template}' must give a file name`);
  return path.join(path.dirname(input), name);
}

/** The BN eps each fused block's branches were folded with, counted by value and where it came from. */
export function epsSummary(blocks: readonly Block[], override?: number): ConvertResult['eps'] {
  const counts = new Map<string, { value: number; source: string; blocks: Set<string> }>();
  for (const b of blocks) {
    for (const branch of b.branches) {
      if (!branch.bn) continue;
      const value = override ?? branch.bn.eps;
      const source = override !== undefined ? 'override' : branch.bn.epsSource === 'attribute' ? 'stored in the file' : `${b.family} default`;
      const key = `${value}|${source}`;
      if (!counts.has(key)) counts.set(key, { value, source, blocks: new Set() });
      counts.get(key)!.blocks.add(b.name);
    }
  }
  return [...counts.values()].map((c) => ({ value: c.value, source: c.source, blocks: c.blocks.size }));
}

/** The structure's warnings as lines, each naming its block. */
export function warningLines(warnings: readonly { block?: string; message: string }[]): string[] {
  return warnings.map((w) => (w.block ? `${w.block}: ${w.message}` : w.message));
}
