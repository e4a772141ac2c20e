import { defaultOutputPath, whileUnchanged } from '../convert/convert';
import { ModelFormatError } from '../formats/errors';
import { stampOf } from '../formats/fileStamp';
import type { WeightsChoice } from '../formats/modelFile';
import { openModelFile } from '../formats/openModelFile';
import { buildStructure, type StructureOptions } from '../model/buildStructure';
import { allBlocks, type Block } from '../model/structure';
import { cancelledError, writeAtomically } from '../writers/atomicFile';
import type { ProducedBytes } from '../writers/checksum';
import { writeOnnxModel } from '../writers/onnxWriter';
import { timed, verifyEncodedFile } from '../writers/verifyOutput';
import { buildGraph, type BuiltGraph } from './buildGraph';
import { graphStats } from './stats';
import type { Topology } from './topology';

/** StructureOptions: what the file cannot say about its blocks (e.g. that its QARepVGG blocks are QARepVGGBlockV2). */
export interface OnnxExportOptions extends StructureOptions {
  output?: string;
  /** The checkpoint key to read the weights from (default: the one the model's own tools read). */
  weights?: string;
  force?: boolean;
  /** Replaces every BN eps when fusing. */
  eps?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, block: Block) => void;
}

export interface OnnxExportResult {
  input: string;
  output: string;
  topology: Topology;
  blocksFused: number;
  blocksAlreadyDeploy: number;
  /** Parameters of the whole file. */
  paramsBefore: number;
  /** Parameters of the written graph (which leaves out layers outside the blocks unless it is a classifier). */
  paramsAfter: number;
  bytesWritten: number;
  seconds: number;
  /** Of `seconds`: reading the finished file back and checking it against what was produced. */
  verifySeconds: number;
  /** Which of a training checkpoint's weights were exported, and why. */
  weights?: WeightsChoice;
  notes: string[];
  warnings: string[];
}

/** `<stem>.deploy.onnx` beside the input. */
export function defaultOnnxOutputPath(input: string): string {
  return defaultOutputPath(input, 'pth', '{stem}.deploy.onnx');
}

/**
 * Writes the deploy form of a checkpoint as an ONNX model (opset 13, float32): the same graph
 * the parity check runs, with batch, height and width left symbolic.
 */
export async function writeDeployOnnx(input: string, options: OnnxExportOptions = {}): Promise<OnnxExportResult> {
  const started = performance.now();
  const before = await stampOf(input);
  const model = await openModelFile(input, { weights: options.weights });
  try {
    if (model.format === 'onnx') {
      throw new ModelFormatError(input, 'is already ONNX; convert the PyTorch or safetensors checkpoint instead');
    }
    const structure = buildStructure(model, options);
    const blocks = allBlocks(structure);
    const train = blocks.filter((b) => b.form === 'train');
    if (train.length === 0) {
      throw new ModelFormatError(input, blocks.length ? 'every block is already in deploy form' : 'no re-parameterizable blocks found');
    }
    const output = options.output ?? defaultOnnxOutputPath(input);
    let fused = 0;
    let built: BuiltGraph | undefined;
    let produced: ProducedBytes | undefined;
    const verify = timed((temp) => verifyEncodedFile(temp, 'onnx', produced!));
    const bytesWritten = await writeAtomically(
      output,
      (sink) =>
        whileUnchanged(input, before, async () => {
          built = await buildGraph(model, structure, {
            form: 'deploy',
            eps: options.eps,
            onBlock: (_done, _total, block) => {
              if (options.signal?.aborted) throw cancelledError(output);
              if (block.form === 'train') options.onProgress?.(++fused, train.length, block);
            },
          });
          produced = await writeOnnxModel(sink, built.model);
        }),
      { overwrite: options.force, protect: [input], signal: options.signal, verify: verify.run },
    );
    const graph = built!;
    return {
      input,
      output,
      topology: graph.topology,
      blocksFused: train.length,
      blocksAlreadyDeploy: blocks.length - train.length,
      paramsBefore: structure.params.total,
      paramsAfter: graphStats(graph.model.graph!, new Map()).params,
      bytesWritten,
      seconds: (performance.now() - started) / 1000,
      verifySeconds: verify.seconds(),
      weights: model.weights,
      notes: graph.notes,
      warnings: [...model.warnings, ...structure.warnings.map((w) => (w.block ? `${w.block}: ${w.message}` : w.message))],
    };
  } finally {
    await model.close();
  }
}
