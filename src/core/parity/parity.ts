import * as path from 'node:path';
import { encodeOnnxModel } from '../formats/onnx';
import type { OnnxGraph, OnnxModel } from '../formats/onnxModel';
import type { ModelFile, WeightsChoice } from '../formats/modelFile';
import { isFloatDType, type DType } from '../formats/tensor';
import { openModelFile } from '../formats/openModelFile';
import { fuseOnnxModel, onnxBlockOutputs } from '../fuse/onnxFusion';
import { blockNamer, buildGraph, LOGITS, type GraphForm } from '../graph/buildGraph';
import { graphStats } from '../graph/stats';
import type { Topology } from '../graph/topology';
import { buildStructure, type StructureOptions } from '../model/buildStructure';
import { allBlocks, type ModelStructure } from '../model/structure';
import { runInChild, type ChildOptions } from './child';
import type { Metrics } from './compare';
import type { Verdict } from '../../shared/reportData';
import { ParityError } from './errors';
import { adoptGeometry } from './geometry';
import { readNpy } from './npy';
import { NormalRandom } from './prng';
import type { Feed, ModelSource, ProgressMessage, SessionSpec, WorkerPhase } from './workerMessages';
import { blocksPart, onnxPart, shapeChannelsMessage, type CheckedPart } from './scope';
import { failAdvice } from './advice';
import { controlError, defaultTolerance, measuredTolerance, roundingControl, UNIT_ROUNDOFF, type ToleranceChoice } from './tolerance';
import { WorkFolder } from './workFolder';

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

/** One side of a comparison: a graph ready to run, and what it exposes. */
interface ComparedModel {
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
interface ComparedAs {
  role: 'reference' | 'candidate';
  reference?: ModelStructure;
}

function announceGraphs(ref: ComparedModel, cand: ComparedModel, options: ParityOptions): void {
  const ran = (side: ComparedModel): RanGraph => ({ graph: side.graph, builtFromBlocks: side.proto !== undefined });
  options.onGraphs?.({ reference: ran(ref), candidate: ran(cand) });
}

const TOPOLOGIES: readonly string[] = ['classifier', 'chain', 'blockwise'];

function check(condition: boolean, subject: string, reason: string): asserts condition {
  if (!condition) throw new ParityError(subject, reason, 'input');
}

/** Building or fusing the graphs of a large model takes seconds: a cancel is heard between blocks, not only once inference runs. */
function throwIfCancelled(options: ParityOptions, subject: string): void {
  if (options.signal?.aborted) throw new ParityError(subject, 'cancelled', 'cancelled');
}

function validate(options: ParityOptions): void {
  const positiveInt = (v: number | undefined, name: string, min = 1) =>
    check(v === undefined || (Number.isInteger(v) && v >= min), 'options', `${name} must be an integer >= ${min}`);
  positiveInt(options.inputs, 'inputs');
  positiveInt(options.latencyRuns, 'latencyRuns', 0);
  for (const [name, v] of [
    ['atol', options.atol],
    ['rtol', options.rtol],
    ['eps', options.eps],
  ] as const) {
    check(v === undefined || (Number.isFinite(v) && v >= 0), 'options', `${name} must be a non-negative number`);
  }
  check(
    options.seed === undefined || (Number.isInteger(options.seed) && options.seed >= 0 && options.seed < 2 ** 32),
    'options',
    'seed must be an integer in [0, 2^32)',
  );
  check(
    options.shape === undefined || (options.shape.length === 4 && options.shape.every((d) => Number.isInteger(d) && d >= 1)),
    'options',
    'shape must be 4 positive integers: batch, channels, height, width',
  );
}

/**
 * A graph of the file's blocks, as stored ('as-is') or with the train blocks fused here ('deploy'),
 * written to `folder` as NAME.onnx. A candidate's block kernels go to options.onBlockKernel.
 */
async function builtSide(
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
function onnxSide(model: ModelFile, structure?: ModelStructure): ComparedModel {
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

async function sideOf(file: string, options: ParityOptions, folder: WorkFolder, name: string, side: ComparedAs): Promise<ComparedModel> {
  // The slot names the reference's weights; a deploy file RepLens wrote is a plain state dict.
  const model = await openModelFile(file, { weights: side.role === 'reference' ? options.weights : undefined });
  try {
    if (model.format === 'onnx') return onnxSide(model);
    return { ...(await builtSide(model, 'as-is', options, folder, name, side)), weights: model.weights };
  } finally {
    await model.close();
  }
}

/** Input names of the candidate for each reference input. */
function matchInputs(ref: ComparedModel, cand: ComparedModel): Record<string, string> {
  const candNames = new Set(cand.inputs.map((i) => i.name));
  if (ref.inputs.length === cand.inputs.length && ref.inputs.every((i) => candNames.has(i.name))) {
    return Object.fromEntries(ref.inputs.map((i) => [i.name, i.name]));
  }
  if (ref.inputs.length === 1 && cand.inputs.length === 1) return { [ref.inputs[0].name]: cand.inputs[0].name };
  const list = (s: ComparedModel) => s.inputs.map((i) => i.name).join(', ');
  throw new ParityError(cand.file, `its inputs (${list(cand)}) do not match those of ${ref.file} (${list(ref)})`, 'mismatch');
}

/**
 * Concrete input shapes. Fixed dimensions of either model win; symbolic ones come from
 * options.shape, else batch 1 and 224×224 (32×32 for blockwise graphs, whose blocks run alone).
 */
function resolveShapes(ref: ComparedModel, cand: ComparedModel, inputMap: Record<string, string>, options: ParityOptions): Map<string, number[]> {
  const size = ref.topology === 'blockwise' ? DEFAULTS.blockwiseSize : DEFAULTS.size;
  const wanted = options.shape;
  // A graph RepLens built starts at a block, whose input is rarely the image: say so, and what to pass.
  const explained = wanted && shapeChannelsMessage(ref.part, wanted);
  if (explained) throw new ParityError(ref.file, explained, 'input');
  const shapes = new Map<string, number[]>();
  for (const input of ref.inputs) {
    const other = cand.inputs.find((i) => i.name === inputMap[input.name])!;
    const rank = Math.max(input.dims.length, other.dims.length);
    if (rank === 0) throw new ParityError(ref.file, `input '${input.name}' has no shape in either model; this check needs its rank`, 'input');
    const dims: number[] = [];
    for (let d = 0; d < rank; d++) {
      const fixed = [input.dims[d], other.dims[d]].filter((v): v is number => typeof v === 'number' && v > 0);
      if (fixed.length === 2 && fixed[0] !== fixed[1]) {
        throw new ParityError(cand.file, `input '${other.name}' has ${fixed[1]} in dimension ${d}, ${ref.file} has ${fixed[0]}`, 'mismatch');
      }
      const fromOption = wanted !== undefined && rank === 4 ? wanted[d] : undefined;
      if (fixed.length > 0) {
        // The channel count of a blockwise graph is per block; the other dimensions must agree with what was asked.
        const perBlock = d === 1 && ref.topology === 'blockwise';
        if (fromOption !== undefined && fromOption !== fixed[0] && !perBlock) {
          throw new ParityError(ref.file, `input '${input.name}' has ${fixed[0]} in dimension ${d}, but the shape asked for has ${fromOption}`, 'input');
        }
        dims.push(fixed[0]);
      } else if (fromOption !== undefined) {
        dims.push(fromOption);
      } else if (d === 0) {
        dims.push(1);
      } else if (rank === 4 && d >= 2) {
        dims.push(size);
      } else {
        throw new ParityError(ref.file, `input '${input.name}' has a symbolic dimension ${d} (${String(input.dims[d])}); give the input shape`, 'input');
      }
    }
    shapes.set(input.name, dims);
  }
  return shapes;
}

async function samplesFor(ref: ComparedModel, shapes: Map<string, number[]>, options: ParityOptions): Promise<Feed[][]> {
  if (options.inputFile !== undefined) {
    check(ref.inputs.length === 1, options.inputFile, `an input file fits a model with one input; this graph has ${ref.inputs.length} (${ref.topology})`);
    const { shape, data } = await readNpy(options.inputFile);
    const name = ref.inputs[0].name;
    const want = shapes.get(name)!;
    const fits = shape.length === want.length && shape.every((d, i) => d === want[i] || (i !== 1 && typeof ref.inputs[0].dims[i] !== 'number'));
    check(fits, options.inputFile, `shape (${shape.join(', ')}) does not fit input '${name}' [${ref.inputs[0].dims.map((d) => d ?? '?').join(', ')}]`);
    shapes.set(name, shape);
    return [[{ name, dims: shape, data }]];
  }
  const random = new NormalRandom(options.seed ?? DEFAULTS.seed);
  const samples: Feed[][] = [];
  for (let s = 0; s < (options.inputs ?? DEFAULTS.inputs); s++) {
    samples.push(
      ref.inputs.map((i) => {
        const dims = shapes.get(i.name)!;
        return { name: i.name, dims, data: random.fill(dims.reduce((a, b) => a * b, 1)) };
      }),
    );
  }
  return samples;
}

type Pair = { name: string; kind: 'output' | 'block'; reference: string; candidate: string };

function pairsFor(ref: ComparedModel, cand: ComparedModel, notes: string[]): Pair[] {
  const candOutputs = new Set(cand.graph.output.map((o) => o.name));
  const pairs: Pair[] = [];
  for (const o of ref.outputs) {
    if (candOutputs.has(o)) pairs.push({ name: o, kind: 'output', reference: o, candidate: o });
  }
  if (pairs.length === 0 && ref.outputs.length === 1 && cand.outputs.length === 1) {
    notes.push(`output '${ref.outputs[0]}' is compared with '${cand.outputs[0]}' of ${cand.file}: the only output of each`);
    pairs.push({ name: ref.outputs[0], kind: 'output', reference: ref.outputs[0], candidate: cand.outputs[0] });
  }
  for (const o of ref.outputs) if (!pairs.some((p) => p.reference === o)) notes.push(`output '${o}' has no counterpart in ${cand.file}`);
  pairs.push(...blockPairs(ref, cand, notes));
  if (pairs.length === 0) throw new ParityError(cand.file, `none of its outputs matches an output of ${ref.file}`, 'mismatch');
  return pairs;
}

/** Each reference block with its counterpart in the candidate, where both hold the same point of the block. */
function blockPairs(ref: ComparedModel, cand: ComparedModel, notes: string[]): Pair[] {
  if (ref.blocks.length === 0) return [];
  if (cand.blockPoint !== ref.blockPoint) {
    const [after, sum] = ref.blockPoint === 'after activation' ? [ref, cand] : [cand, ref];
    notes.push(
      `blocks are not compared one by one: ${after.file} gives each block's result after its activation, ${sum.file} the sum of its branches before it`,
    );
    return [];
  }
  const candBlocks = new Map(cand.blocks.map((b) => [b.name, b.tensor]));
  const produced = new Set(cand.graph.node.flatMap((n) => n.output));
  const pairs: Pair[] = [];
  const missing: string[] = [];
  for (const b of ref.blocks) {
    // Fusion keeps a block's result under its tensor name, so a block not recognised in the candidate still matches by it.
    const tensor = candBlocks.get(b.name) ?? (produced.has(b.tensor) ? b.tensor : undefined);
    if (tensor !== undefined) pairs.push({ name: b.name, kind: 'block', reference: b.tensor, candidate: tensor });
    else missing.push(b.name);
  }
  if (missing.length > 0)
    notes.push(
      `${missing.length} block(s) have no counterpart in ${cand.file}, so they are not compared one by one (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''})`,
    );
  return pairs;
}

function formStats(side: ComparedModel, shapes: Map<string, number[]>, latencyMs: number | null, notes: string[]): FormStats {
  const stats = graphStats(side.graph, shapes);
  if (stats.macsNote) notes.push(`${side.label}: ${stats.macsNote}`);
  return { file: side.file, source: side.source, latencyMs, params: stats.params, macs: stats.macs, nodes: stats.nodes };
}

/**
 * The tensors of `wanted` that `side` computes but does not output, as a serialized ModelProto
 * that holds only those graph outputs (see SessionSpec.addedOutputs); undefined when there are none.
 */
async function addedOutputs(side: ComparedModel, wanted: readonly string[]): Promise<Uint8Array | undefined> {
  const outputs = new Set(side.graph.output.map((o) => o.name));
  const added = [...new Set(wanted)].filter((t) => !outputs.has(t));
  if (added.length === 0) return undefined;
  // Without a type: ONNX Runtime infers it from the node that computes the tensor.
  return encodeOnnxModel({
    graph: { node: [], initializer: [], input: [], output: added.map((name) => ({ name })), valueInfo: [] },
    opsetImport: [],
    metadataProps: [],
  });
}

/** The 16-bit type among `dtypes`, bfloat16 (8 significant bits) before float16 (11). */
function lowestPrecision(dtypes: ReadonlySet<DType | undefined>): DType | undefined {
  return dtypes.has('bfloat16') ? 'bfloat16' : dtypes.has('float16') ? 'float16' : undefined;
}

/**
 * The tolerance for this comparison (see tolerance.ts): as given, the float32 defaults, or for 16-bit
 * deploy weights 4× what one rounding of the train form's block weights does to its outputs.
 */
async function toleranceOf(
  ref: ComparedModel,
  cand: ComparedModel,
  samples: Feed[][],
  inputMap: Record<string, string>,
  pairs: Pair[],
  childOptions: ChildOptions,
  options: ParityOptions,
  folder: WorkFolder,
): Promise<ToleranceChoice> {
  const base = { atol: options.atol ?? DEFAULTS.atol, rtol: options.rtol ?? DEFAULTS.rtol };
  const given = options.atol !== undefined || options.rtol !== undefined;
  const dtype = cand.weightDType;
  const u = dtype && UNIT_ROUNDOFF[dtype];
  if (given || !dtype || !u || !ref.proto || !ref.structure) return defaultTolerance(base, given, u ? dtype : undefined);
  const tensors = new Set(allBlocks(ref.structure).flatMap((b) => b.tensors));
  const proto = ref.proto;
  const written = await folder.build('control', async (store) => ({
    model: { ...proto, graph: await roundingControl(ref.graph, tensors, u, options.seed ?? DEFAULTS.seed, (t) => folder.read(t), store) },
  }));
  const control: ComparedModel = { ...ref, label: `${ref.file} (rounding control)`, graph: written.model.graph!, model: { path: written.path } };
  const outputs = pairs.map((p) => p.reference);
  const reply = await runInChild(
    {
      type: 'parity',
      reference: await sessionSpec(ref, outputs),
      candidate: await sessionSpec(control, outputs),
      samples,
      inputMap: Object.fromEntries(Object.keys(inputMap).map((k) => [k, k])),
      pairs: pairs.map((p) => ({ reference: p.reference, candidate: p.reference })),
      tolerance: base,
      latencyRuns: 0,
    },
    {
      ...childOptions,
      onProgress: (m) =>
        options.onProgress?.({
          phase: m.phase,
          done: m.done,
          total: m.total,
          message: workerMessage(m, { reference: 'train form', candidate: 'rounding control' }),
        }),
    },
  );
  return measuredTolerance(base, dtype, controlError(reply.metrics));
}

/** What the worker is doing, for a progress line: the two models are loaded and run one after the other. */
function workerMessage(m: ProgressMessage, names: Record<'reference' | 'candidate', string>): string {
  if (m.phase === 'latency') return 'timing both forms';
  const which = names[m.model ?? 'reference'];
  return m.phase === 'load' ? `loading ${which}` : `${which}: ${m.done} of ${m.total} inputs run`;
}

async function sessionSpec(side: ComparedModel, tensors: string[]): Promise<SessionSpec> {
  const added = await addedOutputs(side, tensors);
  return { label: side.label, source: side.model, ...(added ? { addedOutputs: added } : {}) };
}

async function compareOnInputs(ref: ComparedModel, cand: ComparedModel, options: ParityOptions, folder: WorkFolder): Promise<ParityResult> {
  const notes = [...ref.notes, ...cand.notes.filter((n) => !ref.notes.includes(n))];
  const inputMap = matchInputs(ref, cand);
  const shapes = resolveShapes(ref, cand, inputMap, options);
  const samples = await samplesFor(ref, shapes, options);
  const pairs = pairsFor(ref, cand, notes);
  // One file fused in memory: its forms; two files: their names.
  const names =
    ref.file === cand.file ? { reference: ref.source, candidate: cand.source } : { reference: path.basename(ref.file), candidate: path.basename(cand.file) };
  const childOptions: ChildOptions = {
    subject: `${ref.file} vs ${cand.file}`,
    workerPath: options.workerPath,
    timeoutSeconds: options.timeoutSeconds,
    signal: options.signal,
    onProgress: (m) => options.onProgress?.({ phase: m.phase, done: m.done, total: m.total, message: workerMessage(m, names) }),
  };
  const tolerance = await toleranceOf(ref, cand, samples, inputMap, pairs, childOptions, options, folder);
  const { atol, rtol } = tolerance;
  const reply = await runInChild(
    {
      type: 'parity',
      reference: await sessionSpec(
        ref,
        pairs.map((p) => p.reference),
      ),
      candidate: await sessionSpec(
        cand,
        pairs.map((p) => p.candidate),
      ),
      samples,
      inputMap,
      pairs,
      tolerance: { atol, rtol },
      latencyRuns: options.latencyRuns ?? DEFAULTS.latencyRuns,
    },
    childOptions,
  );

  const candShapes = new Map([...shapes].map(([name, dims]) => [inputMap[name], dims]));
  const outputs: OutputResult[] = [];
  const blocks: BlockResult[] = [];
  pairs.forEach((p, i) => {
    const m: Metrics = reply.metrics[i];
    const common = {
      name: p.name,
      maxAbs: m.maxAbs,
      maxRel: m.maxRel,
      meanAbs: m.meanAbs,
      cosine: m.cosine,
      pass: m.pass,
      scale: m.scale,
      nonFinite: m.nonFinite,
      ...(m.error ? { error: m.error } : {}),
    };
    if (p.kind === 'block') blocks.push(common);
    else
      outputs.push({
        ...common,
        top1Agreement: m.top1Agreement,
        mismatched: m.mismatched,
        elements: m.elements,
        ...(p.candidate !== p.reference ? { candidateName: p.candidate } : {}),
      });
  });
  const forms = {
    train: formStats(ref, shapes, reply.latencyMs.reference, notes),
    deploy: formStats(cand, candShapes, reply.latencyMs.candidate, notes),
  };
  const pass = [...outputs, ...blocks].every((r) => r.pass);
  return {
    pass,
    inputs: samples.length,
    atol,
    rtol,
    toleranceBasis: tolerance.basis,
    advice: pass ? null : failAdvice([...outputs, ...blocks], tolerance, cand.file),
    outputs,
    blocks,
    forms,
    topology: ref.topology,
    scope: ref.part.sentence,
    shapeUse: ref.part.shapeUse,
    shapes: Object.fromEntries(shapes),
    seed: options.inputFile === undefined ? (options.seed ?? DEFAULTS.seed) : null,
    notes,
  };
}

/**
 * Runs a checkpoint's train form (as its BatchNorms and branches say) against its deploy form
 * fused in memory by fuseBlock — or an ONNX model against itself with its blocks fused in
 * place — on the same seeded inputs, in a child process.
 */
export async function checkParity(file: string, options: ParityOptions = {}): Promise<ParityResult> {
  validate(options);
  throwIfCancelled(options, file);
  const model = await openModelFile(file, { weights: options.weights });
  const folder = await WorkFolder.create(file).catch(async (e: unknown) => {
    await model.close();
    throw e;
  });
  try {
    let ref: ComparedModel;
    let cand: ComparedModel;
    try {
      const structure = buildStructure(model, options);
      const blocks = allBlocks(structure);
      if (blocks.length === 0) throw new ParityError(file, 'no re-parameterizable blocks found', 'input');
      if (!blocks.some((b) => b.form === 'train')) {
        throw new ParityError(file, 'every block is already in deploy form: compare it with its train-form file (replens parity TRAIN --deploy FILE)', 'input');
      }
      // ONNX blocks named like a checkpoint's, with their BatchNorms, are rebuilt block by block; any
      // other ONNX model runs as it is against the same graph with its blocks fused in place, which
      // keeps each block's result under its tensor name, so both compare block by block.
      const rebuildable = blocks.every((b) => b.onnx?.familySource === 'initializer-names' && b.branches.every((br) => !br.withoutBn));
      if (model.format === 'onnx' && !rebuildable) {
        const displayName = blockNamer(model);
        const kernels = options.onBlockKernel;
        const fusion = await fuseOnnxModel(model, structure, {
          eps: options.eps,
          onBlock: () => throwIfCancelled(options, file),
          onBlockKernel: kernels && ((block, kernel, outChannels) => kernels(displayName(block.name), kernel, outChannels)),
        });
        const fused = fusion.model;
        ref = { ...onnxSide(model, structure), part: onnxPart(model.path, fusion.fused.length) };
        cand = {
          ...ref,
          label: `${model.path} (blocks fused in memory)`,
          source: 'ONNX with blocks fused in memory',
          model: { path: await folder.write('fused', fused) },
          graph: fused.graph!,
        };
      } else {
        ref = await builtSide(model, 'as-is', options, folder, 'train', { role: 'reference' });
        cand = await builtSide(model, 'deploy', options, folder, 'deploy', { role: 'candidate' });
      }
    } finally {
      await model.close();
    }
    announceGraphs(ref, cand, options);
    return { ...(await compareOnInputs(ref, cand, options, folder)), weights: model.weights };
  } finally {
    await folder.remove();
  }
}

/**
 * Compares two files on the same seeded inputs: checkpoints become graphs of their blocks as
 * they are, ONNX files run as they are. `a` is the reference (forms.train), `b` the candidate.
 */
export async function compareModels(a: string, b: string, options: ParityOptions = {}): Promise<ParityResult> {
  validate(options);
  throwIfCancelled(options, `${a} vs ${b}`);
  const folder = await WorkFolder.create(`${a} vs ${b}`);
  try {
    const ref = await sideOf(a, options, folder, 'a', { role: 'reference' });
    const cand = await sideOf(b, options, folder, 'b', { role: 'candidate', reference: ref.structure });
    announceGraphs(ref, cand, options);
    return { ...(await compareOnInputs(ref, cand, options, folder)), weights: ref.weights };
  } finally {
    await folder.remove();
  }
}
