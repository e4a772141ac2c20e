/**
 * The two sides of a comparison, each a graph ready to run in the child with what it exposes:
 * a checkpoint becomes a graph RepLens builds from its blocks (as stored, or fused), an ONNX file
 * runs as it is or with its blocks fused in place.
 */
import * as path from 'node:path';
import type { ModelFile, WeightsChoice } from '../formats/modelFile';
import type { OnnxGraph, OnnxModel } from '../formats/onnxModel';
import { openModelFile } from '../formats/openModelFile';
import { isFloatDType, type DType } from '../formats/tensor';
import { fuseOnnxModel, onnxBlockOutputs } from '../fuse/onnxFusion';
import { blockNamer, buildGraph, LOGITS, type GraphForm } from '../graph/buildGraph';
import type { Topology } from '../graph/topology';
import { buildStructure } from '../model/buildStructure';
import { allBlocks, type ModelStructure } from '../model/structure';
import { adoptGeometry } from './geometry';
import { throwIfCancelled, type ParityOptions, type RanGraph } from './options';
import { blocksPart, onnxPart, type CheckedPart } from './scope';
import type { WorkFolder } from './workFolder';
import type { ModelSource } from './workerMessages';

/** One side of a comparison: a graph ready to run, and what it exposes. */
export interface ComparedModel {
  label: string;
  /** Which of a training checkpoint's weights this side was built from. */
  weights?: WeightsChoice;
  file: string;
  source: string;
  model: ModelSource;
  graph: OnnxGraph;
  topology: Topology | 'onnx';
  inputs: { name: string; dims: (number | string | undefined)[] }[];
  /** The model's own outputs. */
  outputs: string[];
  /** Where each block's result is in the graph: a graph output, or a tensor added as one for the run. */
  blocks: { name: string; tensor: string }[];
  /**
   * What a block's result is: graphs RepLens builds output each block after its activation; in an
   * ONNX file it is the sum of the block's branches, before the activation.
   */
  blockPoint: 'after activation' | 'branch sum';
  notes: string[];
  /** For checkpoints: the structure the graph was built from, the model RepLens built, and the type its block weights are stored in. */
  structure?: ModelStructure;
  proto?: OnnxModel;
  weightDType?: DType;
  /** What part of the model this side runs. */
  part: CheckedPart;
}

/** Which side of the comparison a file is; a candidate may borrow geometry its file leaves unknown from the reference's structure (see adoptGeometry). */
export interface ComparedAs {
  role: 'reference' | 'candidate';
  reference?: ModelStructure;
}

export function announceGraphs(ref: ComparedModel, cand: ComparedModel, options: ParityOptions): void {
  const ran = (side: ComparedModel): RanGraph => ({ graph: side.graph, builtFromBlocks: side.proto !== undefined });
  options.onGraphs?.({ reference: ran(ref), candidate: ran(cand) });
}

const TOPOLOGIES: readonly string[] = ['classifier', 'chain', 'blockwise'];

/**
 * A graph of the file's blocks, as stored ('as-is') or with the train blocks fused here ('deploy'),
 * written to `folder` as NAME.onnx. A candidate's block kernels go to options.onBlockKernel.
 */
export async function builtSide(
  model: ModelFile,
  form: GraphForm,
  options: ParityOptions,
  folder: WorkFolder,
  name: string,
  side: ComparedAs,
): Promise<ComparedModel> {
  const structure = buildStructure(model, options);
  const adopted = side.reference ? adoptGeometry(structure, side.reference, model.path) : [];
  const displayName = blockNamer(model);
  const kernels = side.role === 'candidate' ? options.onBlockKernel : undefined;
  const built = await folder.build(name, (store) =>
    buildGraph(model, structure, {
      form,
      eps: options.eps,
      store,
      onBlockKernel: kernels && ((block, kernel, outChannels) => kernels(displayName(block.name), kernel, outChannels)),
      onBlock: (done, total, block) => {
        throwIfCancelled(options, model.path);
        options.onProgress?.({ phase: 'build', done, total, message: `${form === 'deploy' ? 'fusing' : 'building'} ${block.name}` });
      },
    }),
  );
  const fusedHere = form === 'deploy' && allBlocks(structure).some((b) => b.form === 'train');
  const source = `${built.form} form${fusedHere ? ', fused in memory' : ''}`;
  const graph = built.model.graph!;
  // The classifier's weight is the Gemm's second input; everything the graph holds is in it.
  const head = graph.node.find((n) => n.output.includes(LOGITS) && n.opType === 'Gemm')?.input[1]?.replace(/\.weight$/, '');
  const inGraph = new Set(graph.initializer.map((t) => t.name));
  const blockTensors = new Set(allBlocks(structure).flatMap((b) => b.tensors));
  const othersInFile = model.tensors.some((t) => isFloatDType(t.dtype) && !blockTensors.has(t.name) && !inGraph.has(t.name));
  const part = blocksPart({
    topology: built.topology,
    blocks: allBlocks(structure).map((b) => ({ name: displayName(b.name), family: b.family, inChannels: b.inChannels })),
    head: head === undefined ? undefined : displayName(head),
    othersInFile,
    source: model.format === 'onnx' ? 'onnx' : 'checkpoint',
  });
  const convWeights = new Set(allBlocks(structure).flatMap((b) => [b.deploy?.weight, ...b.branches.map((br) => br.convWeight)]));
  const weightDTypes = new Set(model.tensors.filter((t) => convWeights.has(t.name)).map((t) => t.dtype));
  return {
    label: `${model.path} (${source})`,
    file: model.path,
    source,
    model: { path: built.path },
    proto: built.model,
    // A deploy block fused here is float32 whatever the file holds.
    weightDType: form === 'as-is' ? lowestPrecision(weightDTypes) : undefined,
    graph,
    topology: built.topology,
    inputs: built.inputs.map((i) => ({ name: i.name, dims: ['batch', i.channels, 'height', 'width'] })),
    outputs: built.outputs,
    blocks: built.blocks.map((name) => ({ name, tensor: name })),
    blockPoint: 'after activation',
    notes: [...built.notes, ...adopted, ...structure.warnings.map((w) => `${model.path}: ${w.block ? `${w.block}: ` : ''}${w.message}`)],
    structure,
    part,
  };
}

/**
 * An ONNX file, run as it is. A graph RepLens wrote says its topology, so its block outputs are
 * known; in any other graph each block found in it is compared at the sum of its branches, a
 * tensor that fusion keeps by name (see onnxBlockOutputs).
 */
export function onnxSide(model: ModelFile, structure?: ModelStructure): ComparedModel {
  const graph = model.onnx!.graph!;
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const topology = model.onnx!.metadataProps.find((p) => p.key === 'replens.topology')?.value;
  const names = graph.output.map((o) => o.name ?? '');
  const known = topology !== undefined && TOPOLOGIES.includes(topology);
  const outputs = !known ? names : topology === 'classifier' ? names.filter((n) => n === 'output') : topology === 'chain' ? names.slice(-1) : names;
  return {
    label: `${model.path} (ONNX as is)`,
    file: model.path,
    source: 'ONNX as is',
    model: { path: path.resolve(model.path) },
    graph,
    topology: known ? (topology as Topology) : 'onnx',
    inputs: graph.input
      .filter((i) => !initializers.has(i.name))
      .map((i) => ({ name: i.name ?? '', dims: i.type?.tensorType?.shape?.dim.map((d) => d.dimValue ?? d.dimParam) ?? [] })),
    outputs,
    ...(known
      ? { blocks: names.filter((n) => n !== 'output').map((name) => ({ name, tensor: name })), blockPoint: 'after activation' as const }
      : { blocks: blocksInGraph(model, structure ?? buildStructure(model)), blockPoint: 'branch sum' as const }),
    notes: [],
    part: onnxPart(model.path, undefined),
  };
}

function blocksInGraph(model: ModelFile, structure: ModelStructure): ComparedModel['blocks'] {
  const displayName = blockNamer(model);
  return onnxBlockOutputs(structure).map((b) => ({ name: displayName(b.block), tensor: b.original }));
}

export async function sideOf(file: string, options: ParityOptions, folder: WorkFolder, name: string, side: ComparedAs): Promise<ComparedModel> {
  // The slot names the reference's weights; a deploy file RepLens wrote is a plain state dict.
  const model = await openModelFile(file, { weights: side.role === 'reference' ? options.weights : undefined });
  try {
    if (model.format === 'onnx') return onnxSide(model);
    return { ...(await builtSide(model, 'as-is', options, folder, name, side)), weights: model.weights };
  } finally {
    await model.close();
  }
}

/** The 16-bit type among `dtypes`, bfloat16 (8 significant bits) before float16 (11). */
function lowestPrecision(dtypes: ReadonlySet<DType | undefined>): DType | undefined {
  return dtypes.has('bfloat16') ? 'bfloat16' : dtypes.has('float16') ? 'float16' : undefined;
}

/**
 * An ONNX model whose blocks a checkpoint's graph cannot rebuild, against itself with its blocks
 * fused in place: each block's result keeps its tensor name, so both compare block by block.
 */
export async function fusedInPlaceSides(
  model: ModelFile,
  structure: ModelStructure,
  options: ParityOptions,
  folder: WorkFolder,
): Promise<{ ref: ComparedModel; cand: ComparedModel }> {
  const displayName = blockNamer(model);
  const kernels = options.onBlockKernel;
  const fusion = await fuseOnnxModel(model, structure, {
    eps: options.eps,
    onBlock: () => throwIfCancelled(options, model.path),
    onBlockKernel: kernels && ((block, kernel, outChannels) => kernels(displayName(block.name), kernel, outChannels)),
  });
  const fused = fusion.model;
  const ref = { ...onnxSide(model, structure), part: onnxPart(model.path, fusion.fused.length) };
  const cand = {
    ...ref,
    label: `${model.path} (blocks fused in memory)`,
    source: 'ONNX with blocks fused in memory',
    model: { path: await folder.write('fused', fused) },
    graph: fused.graph!,
  };
  return { ref, cand };
}
