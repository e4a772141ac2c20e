import * as path from 'node:path';
import { BufferPool } from '../formats/bufferPool';
import { splitModelName } from '../formats/modelFileNames';
import { stampOf, unchangedSince } from '../formats/fileStamp';
import type { FileStamp } from '../../shared/reportData';
import { ModelFormatError } from '../formats/errors';
import type { ModelFile, WeightsChoice } from '../formats/modelFile';
import { openModelFile } from '../formats/openModelFile';
import { fuseOnnxModel, onnxBlockOutputs, type OnnxBlockOutput, type OnnxFusion } from '../fuse/onnxFusion';
import { buildStructure, type StructureOptions } from '../model/buildStructure';
import { allBlocks, type Block } from '../model/structure';
import { cancelledError, OutputError, writeAtomically } from '../writers/atomicFile';
import type { ProducedBytes } from '../writers/checksum';
import { writeOnnxModel } from '../writers/onnxWriter';
import type { OutputTensor, WrittenTensor } from '../writers/outputTensor';
import { writeSafetensors } from '../writers/safetensorsWriter';
import { UnwritableValueError } from '../writers/modulePickle';
import { pickleModuleCheckpoint, writeTorchCheckpoint, type ModuleCheckpoint } from '../writers/torchWriter';
import { timed, verifyEncodedFile, verifyTensorFile } from '../writers/verifyOutput';
import { deployModule, NoModuleFormError } from './deployModule';
import { planDeploy, type DeployPlan, type PlanOptions } from './deployPlan';
import { loadNote } from './loadNote';
import type { LoadNote } from '../../shared/reportData';

/** ONNX models are rewritten as ONNX graphs; checkpoints become PyTorch or safetensors files. */
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
  /** ONNX only: node and initializer counts before and after, and where each block's result is in both graphs. */
  graph?: {
    nodes: { before: number; after: number };
    initializers: { before: number; after: number };
    blockOutputs: OnnxBlockOutput[];
  };
  /** What the written file is and the lines that load it, for the blocks' family (see loadNote). */
  load: LoadNote;
  warnings: string[];
}

/** Keys RepLens adds to ModelFile.metadata; the rest are the checkpoint's own entries. */
const READER_KEYS = new Set(['stateDictKey', 'pickleGlobals', 'nonTensorEntries', 'content', 'prefix']);

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

function epsSummary(blocks: readonly Block[], override?: number): ConvertResult['eps'] {
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

/** Reads a train-form model file and writes its deploy form, one block at a time. */
export async function convertFile(input: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const started = performance.now();
  // The output's name needs the format, which needs the file: until then a cancellation names the input.
  if (options.signal?.aborted) throw cancelledError(options.output ?? input);
  const before = await stampOf(input);
  const pool = new BufferPool();
  const model = await openModelFile(input, { pool, weights: options.weights });
  try {
    if (model.format === 'onnx') return await convertOnnx(model, options, before, started);
    if (options.format === 'onnx') throw new ModelFormatError(input, 'is a checkpoint, which has no graph to rewrite; its ONNX form is built by the ONNX export (`replens convert --format onnx`)');
    const format = options.format ?? sameFormatAs(model.format);
    const output = options.output ?? defaultOutputPath(input, format);
    const structure = buildStructure(model, options);
    let done = 0;
    const plan = planDeploy(model, structure, {
      ...options,
      pool,
      onBlock: (block) => options.onProgress?.(++done, plan.fused.length, block),
    });
    if (plan.fused.length === 0) {
      throw new ModelFormatError(input, structure.stages.length ? 'every block is already in deploy form' : 'no re-parameterizable blocks found');
    }
    const warnings: string[] = [];
    const asModule = format === 'pth' && !options.stateDict ? moduleForm(model, plan, warnings) : undefined;
    const tensors = asModule?.tensors ?? plan.tensors;
    let written: WrittenTensor[] = [];
    const verify = timed((temp) => verifyTensorFile(temp, format === 'safetensors' ? 'safetensors' : 'torch-zip', written, pool));
    const bytesWritten = await writeAtomically(
      output,
      (sink) =>
        whileUnchanged(input, before, async () => {
          written = format === 'safetensors'
            ? await writeSafetensors(sink, tensors, { format: 'pt', producer: 'RepLens' })
            : await writeTorchCheckpoint(sink, tensors, asModule?.checkpoint);
        }),
      { overwrite: options.force, protect: [input], signal: options.signal, verify: verify.run },
    );
    return {
      input,
      output,
      format,
      blocksFused: plan.fused.length,
      blocksAlreadyDeploy: plan.passedThrough.length,
      paramsBefore: structure.params.total,
      paramsAfter: structure.params.afterFusion,
      bytesWritten,
      seconds: (performance.now() - started) / 1000,
      verifySeconds: verify.seconds(),
      eps: epsSummary(plan.fused, options.eps),
      droppedPrefix: plan.droppedPrefix,
      module: asModule?.module,
      weights: model.weights,
      load: loadNote({
        families: allBlocks(structure).map((b) => b.family),
        architecture: structure.architecture,
        input,
        output,
        format,
        wholeModule: (model.modules?.length ?? 0) > 0,
        module: asModule?.module,
        weightsKey: model.weights?.key,
        otherKeys: model.weights ? Object.keys(model.metadata).filter((k) => !READER_KEYS.has(k)) : undefined,
        droppedPrefix: plan.droppedPrefix,
        tensors: model.tensors,
        modules: model.modules,
      }),
      warnings: [...model.warnings, ...structure.warnings.map((w) => (w.block ? `${w.block}: ${w.message}` : w.message)), ...warnings],
    };
  } finally {
    await model.close();
  }
}

/**
 * A pickled model is written back as one, in deploy form, so the project's own loaders take the
 * output as they take the input; when its objects do not allow that, a state dict, with a warning.
 */
function moduleForm(model: ModelFile, plan: DeployPlan, warnings: string[]): { tensors: OutputTensor[]; checkpoint: ModuleCheckpoint; module: NonNullable<ConvertResult['module']> } | undefined {
  if (!model.pickled || plan.droppedPrefix !== undefined) return undefined;
  try {
    const deploy = deployModule(model.pickled, plan.fused, plan.tensors);
    return { tensors: deploy.tensors, checkpoint: pickleModuleCheckpoint(deploy.root, deploy.tensors), module: { className: deploy.className, key: deploy.key } };
  } catch (e) {
    if (!(e instanceof NoModuleFormError || e instanceof UnwritableValueError)) throw e;
    warnings.push(`written as a state dict, not as the input's pickled model: ${e.message}`);
    return undefined;
  }
}

/** Checks that the input is still as `before` found it, or the output would mix two versions. */
async function checkUnchanged(input: string, before: FileStamp | null): Promise<void> {
  if (await unchangedSince(input, before)) return;
  if ((await stampOf(input)) === null) throw new ModelFormatError(input, 'was deleted or moved while it was being converted; nothing was written');
  throw new ModelFormatError(input, 'the file changed while it was being converted; nothing was written');
}

/**
 * Runs `write` and then checks the input is unchanged. When `write` fails and the input has
 * changed (a truncated file read short), the change is the cause the user needs to hear.
 */
export async function whileUnchanged(input: string, before: FileStamp | null, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (e) {
    if (!(e instanceof OutputError)) await checkUnchanged(input, before);
    throw e;
  }
  await checkUnchanged(input, before);
}

/** An ONNX model is fused inside its graph and written as ONNX, with external data inlined. */
async function convertOnnx(model: ModelFile, options: ConvertOptions, before: FileStamp | null, started: number): Promise<ConvertResult> {
  const input = model.path;
  if (options.format !== undefined && options.format !== 'onnx') {
    throw new ModelFormatError(input, `an ONNX model is converted to ONNX, not ${options.format}; convert the PyTorch or safetensors checkpoint for that`);
  }
  if (options.dtype !== undefined) {
    throw new ModelFormatError(input, 'an ONNX model keeps its tensor types: new weights of another type would not match the graph\'s activations');
  }
  const output = options.output ?? defaultOutputPath(input, 'onnx');
  const structure = buildStructure(model, options);
  const trainBlocks = allBlocks(structure).filter((b) => b.form === 'train');
  const total = trainBlocks.filter((b) => b.onnx?.fusible).length;
  if (total === 0) {
    const reason = trainBlocks.length ? 'no block can be fused exactly (see the warnings of `inspect`)' : structure.stages.length ? 'every block is already in deploy form' : 'no re-parameterizable blocks found';
    throw new ModelFormatError(input, reason);
  }
  let done = 0;
  let fusion: OnnxFusion | undefined;
  let produced: ProducedBytes | undefined;
  const verify = timed((temp) => verifyEncodedFile(temp, 'onnx', produced!));
  const bytesWritten = await writeAtomically(
    output,
    (sink) =>
      whileUnchanged(input, before, async () => {
        fusion = await fuseOnnxModel(model, structure, {
          eps: options.eps,
          onBlock: (block) => {
            if (options.signal?.aborted) throw cancelledError(output);
            options.onProgress?.(++done, total, block);
          },
        });
        produced = await writeOnnxModel(sink, fusion.model);
      }),
    { overwrite: options.force, protect: [input], signal: options.signal, verify: verify.run },
  );
  const f = fusion!;
  const saved = f.fused.reduce((n, b) => n + b.params.train - b.params.deploy, 0);
  return {
    input,
    output,
    format: 'onnx',
    blocksFused: f.fused.length,
    blocksAlreadyDeploy: f.alreadyDeploy.length,
    paramsBefore: structure.params.total,
    paramsAfter: structure.params.total - saved,
    bytesWritten,
    seconds: (performance.now() - started) / 1000,
    verifySeconds: verify.seconds(),
    eps: epsSummary(f.fused, options.eps),
    graph: { nodes: f.nodes, initializers: f.initializers, blockOutputs: onnxBlockOutputs(structure) },
    load: loadNote({ families: f.fused.map((b) => b.family), architecture: structure.architecture, input, output, format: 'onnx', wholeModule: false }),
    warnings: [
      ...model.warnings,
      ...f.skipped.map((s) => `${s.block.name}: left unfused: ${s.reason}`),
      ...structure.warnings.filter((w) => !f.skipped.some((s) => s.block.name === w.block)).map((w) => (w.block ? `${w.block}: ${w.message}` : w.message)),
    ],
  };
}
