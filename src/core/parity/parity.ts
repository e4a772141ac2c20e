import * as path from 'node:path';
import { encodeOnnxModel } from '../formats/onnxCodec';
import { openModelFile } from '../formats/openModelFile';
import { graphStats } from '../graph/stats';
import { buildStructure } from '../model/buildStructure';
import { allBlocks } from '../model/structure';
import { failAdvice } from './advice';
import { runInChild, type ChildOptions } from './child';
import { announceGraphs, builtSide, fusedInPlaceSides, sideOf, type ComparedModel } from './comparedModel';
import { ParityError } from './errors';
import { readNpy } from './npy';
import type { Metrics } from './compare';
import {
  DEFAULTS,
  requireInput,
  throwIfCancelled,
  validate,
  type BlockResult,
  type FormStats,
  type OutputResult,
  type ParityOptions,
  type ParityResult,
} from './options';
import { NormalRandom } from './prng';
import { shapeChannelsMessage } from './scope';
import { controlError, defaultTolerance, measuredTolerance, roundingControl, UNIT_ROUNDOFF, type ToleranceChoice } from './tolerance';
import { WorkFolder } from './workFolder';
import type { Feed, ProgressMessage, SessionSpec } from './workerMessages';

export {
  DEFAULTS,
  type BlockResult,
  type FormStats,
  type OutputResult,
  type ParityOptions,
  type ParityProgress,
  type ParityResult,
  type RanGraph,
} from './options';

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
    requireInput(
      ref.inputs.length === 1,
      options.inputFile,
      `an input file fits a model with one input; this graph has ${ref.inputs.length} (${ref.topology})`,
    );
    const { shape, data } = await readNpy(options.inputFile);
    const name = ref.inputs[0].name;
    const want = shapes.get(name)!;
    const fits = shape.length === want.length && shape.every((d, i) => d === want[i] || (i !== 1 && typeof ref.inputs[0].dims[i] !== 'number'));
    requireInput(fits, options.inputFile, `shape (${shape.join(', ')}) does not fit input '${name}' [${ref.inputs[0].dims.map((d) => d ?? '?').join(', ')}]`);
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
        relError: m.relError,
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
      // other ONNX model runs as it is against the same graph with its blocks fused in place.
      const rebuildable = blocks.every((b) => b.onnx?.familySource === 'initializer-names' && b.branches.every((br) => !br.withoutBn));
      if (model.format === 'onnx' && !rebuildable) {
        ({ ref, cand } = await fusedInPlaceSides(model, structure, options, folder));
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
