import type { LoadNote } from '../../shared/reportData';
import { graphStats } from '../graph/stats';
import { userMessage } from '../formats/errors';
import { openModelFile } from '../formats/openModelFile';
import type { ModelFile } from '../formats/modelFile';
import type { OnnxGraph } from '../formats/onnxModel';
import { fuseOnnxModel } from '../fuse/onnxFusion';
import { fuseBlock } from '../fuse/fuseBlock';
import { SHAPES_ONLY } from '../writers/externalData';
import { blockNamer, buildGraph } from '../graph/buildGraph';
import { buildStructure } from '../model/buildStructure';
import { branchLabel } from '../model/describe';
import { allBlocks, type Block, type ModelStructure } from '../model/structure';
import { checkParity, compareModels, DEFAULTS, type ParityOptions, type ParityResult, type RanGraph } from '../parity/parity';
import { stampOf } from '../formats/fileStamp';
import type { FileStamp } from '../../shared/reportData';
import { blockMatcher, graphSpecFromOnnx } from './graphSpec';
import { kernelStats } from './kernelStats';
import { layoutInWorker } from './layoutInWorker';
import type { BlockReport, FormCosts, KernelStats, ReportData } from '../../shared/reportData';

export interface ReportOptions extends ParityOptions {
  /** The deploy file to compare with; without it the deploy form is fused in memory. */
  deploy?: string;
  /** The load note of `deploy`, when RepLens just wrote it (convertFile's result); the report carries it. */
  load?: LoadNote;
  /** Where the bundled layout worker is (the extension's dist/). */
  layoutWorker?: string;
}

/**
 * The graphs to draw where the check did not hand over its own (it could not run): built here,
 * without weights. An ONNX input is drawn as its own graph, and its deploy form as that graph with
 * the blocks fused in place.
 */
async function graphToDraw(model: ModelFile, structure: ModelStructure, form: 'before' | 'after'): Promise<OnnxGraph> {
  let graph: OnnxGraph | undefined;
  if (model.format === 'onnx') graph = form === 'before' ? model.onnx?.graph : (await fuseOnnxModel(model, structure)).model.graph;
  // The graphs are drawn, never run: their weights (as large as the model) are not kept.
  else graph = (await buildGraph(model, structure, { form: form === 'before' ? 'as-is' : 'deploy', store: SHAPES_ONLY })).model.graph;
  if (!graph) throw new Error(`${model.path}: no graph to show`);
  return graph;
}

/** A block's facts; its parity numbers are added once parity has run. */
function blockReport(displayName: (name: string) => string, block: Block): BlockReport {
  return {
    name: displayName(block.name),
    stage: displayName(block.stage),
    inChannels: block.inChannels,
    outChannels: block.outChannels,
    kernel: block.kernel,
    stride: block.stride,
    strideInferred: block.strideSource !== 'attribute',
    groups: block.groups,
    branches: block.form === 'deploy' ? [`fused ${block.kernel}×${block.kernel} conv + bias`] : block.branches.map(branchLabel),
    paramsBefore: block.params.train,
    paramsAfter: block.params.deploy,
    warnings: block.warnings,
  };
}

/** MACs of a graph whose every input takes `shape` (batch, channels of each input, height, width); 0 when they cannot be counted. */
function macsAt(graph: OnnxGraph, shape: readonly number[]): number {
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const inputs = graph.input.filter((i) => !initializers.has(i.name));
  const shapes = new Map(
    inputs.map((i) => {
      const dims = i.type?.tensorType?.shape?.dim.map((d) => d.dimValue) ?? [];
      return [i.name ?? '', dims.map((d, k) => (typeof d === 'number' && d > 0 ? d : (shape[k] ?? 1)))] as const;
    }),
  );
  return graphStats(graph, shapes).macs ?? 0;
}

/** What a check gave the report: its result (or why there is none), the graphs it ran, its deploy form's kernels. */
interface CheckHandover {
  parity?: ParityResult;
  parityError: string | null;
  graphs: { before?: OnnxGraph; after?: OnnxGraph };
  kernels: Map<string, KernelStats>;
}

async function runCheck(input: string, model: ModelFile, options: ReportOptions): Promise<CheckHandover> {
  const handover: CheckHandover = { parityError: null, graphs: {}, kernels: new Map() };
  // An ONNX input is drawn as its own graph, which a check may have rebuilt from its blocks instead.
  const drawn = (ran: RanGraph) => (model.format === 'onnx' && ran.builtFromBlocks ? undefined : ran.graph);
  const check: ParityOptions = {
    ...options,
    onBlockKernel: (block, kernel, outChannels) => handover.kernels.set(block, kernelStats(kernel, outChannels)),
    onGraphs: ({ reference, candidate }) => {
      handover.graphs.before = drawn(reference);
      handover.graphs.after = drawn(candidate);
    },
  };
  try {
    handover.parity = options.deploy ? await compareModels(input, options.deploy, check) : await checkParity(input, check);
  } catch (e) {
    handover.parityError = userMessage(e, input);
  }
  return handover;
}

/** Each block's facts, its parity numbers and the statistics of its deploy kernel (fused here where the check did not see it). */
async function blockReports(model: ModelFile, structure: ModelStructure, { parity, kernels }: CheckHandover, eps: number | undefined): Promise<BlockReport[]> {
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const load = (n: string) => byName.get(n)!.toNumbers();
  const displayName = blockNamer(model);
  const blocks: BlockReport[] = [];
  for (const block of allBlocks(structure)) {
    const report = blockReport(displayName, block);
    if (block.form === 'train') {
      const seen = kernels.get(report.name);
      // A block that cannot be fused gets no kernel statistics; its warning says why.
      // The kernel a deploy graph runs: a QARepVGG block's BN after the sum folded in.
      const fused = seen ? undefined : await fuseBlock(block, load, { eps, postBn: 'fold' }).catch(() => undefined);
      const stats = seen ?? (fused && kernelStats(fused.weight, fused.shape[0]));
      if (stats) report.kernelStats = stats;
    }
    const p = parity?.blocks.find((x) => x.name === report.name);
    if (p) report.parity = { maxAbs: p.maxAbs, maxRel: p.maxRel, cosine: p.cosine, pass: p.pass };
    blocks.push(report);
  }
  return blocks;
}

/** A form's costs; they do not depend on parity: without it (it failed), they come from the structure and the graph itself. */
function formCosts(
  f: ParityResult['forms']['train'] | undefined,
  graph: OnnxGraph,
  params: number,
  file: FileStamp | null,
  shape: readonly number[],
): FormCosts {
  return {
    latencyMs: f?.latencyMs ?? null,
    params: f?.params ?? params,
    macs: f ? (f.macs ?? 0) : macsAt(graph, shape),
    nodes: f?.nodes ?? graph.node.length,
    fileBytes: file?.bytes ?? null,
  };
}

/**
 * Everything the report view shows for `input`: parity, both graphs laid out, per-block facts and
 * kernel statistics. The check hands over the graphs it ran and the kernels its deploy form holds;
 * only what it could not give (it failed, or an ONNX file ran as it is) is built here.
 */
export async function buildReport(input: string, options: ReportOptions = {}): Promise<ReportData> {
  // Taken before reading, so a change made while the report is built makes it out of date.
  const stamps = { input: await stampOf(input), output: options.deploy ? await stampOf(options.deploy) : null };
  const model = await openModelFile(input, { weights: options.weights });
  let structure: ModelStructure;
  let handover: CheckHandover;
  let graphs: { before: OnnxGraph; after: OnnxGraph };
  let blocks: BlockReport[];
  try {
    structure = buildStructure(model, options);
    handover = await runCheck(input, model, options);
    graphs = {
      before: handover.graphs.before ?? (await graphToDraw(model, structure, 'before')),
      after: handover.graphs.after ?? (await graphToDraw(model, structure, 'after')),
    };
    blocks = await blockReports(model, structure, handover, options.eps);
  } finally {
    await model.close();
  }
  const { parity, parityError } = handover;
  const refs = blocks.map((b) => ({ name: b.name, stage: b.stage }));
  const [before, after] = await Promise.all([
    layoutInWorker(graphSpecFromOnnx(graphs.before, blockMatcher(refs)), options.layoutWorker),
    layoutInWorker(graphSpecFromOnnx(graphs.after, blockMatcher(refs)), options.layoutWorker),
  ]);
  const shape = parity ? (Object.values(parity.shapes)[0] ?? []) : [...(options.shape ?? [1, 3, DEFAULTS.size, DEFAULTS.size])];
  const weights = model.weights && {
    key: model.weights.key,
    reason: model.weights.reason,
    others: model.weights.slots.map((s) => s.key).filter((k) => k !== model.weights!.key),
  };
  return {
    input,
    output: options.deploy ?? null,
    stamps,
    ...(options.load ? { load: options.load } : {}),
    family: structure.family,
    architecture: structure.architecture,
    ...(weights ? { weights } : {}),
    pass: parity ? parity.pass : null,
    parityError,
    atol: parity?.atol ?? options.atol ?? DEFAULTS.atol,
    rtol: parity?.rtol ?? options.rtol ?? DEFAULTS.rtol,
    toleranceBasis: parity?.toleranceBasis ?? null,
    advice: parity ? parity.advice : 'Fix what the error names, then Check Parity again; the costs below do not need parity and are from the graphs.',
    inputs: parity?.inputs ?? 0,
    shape,
    outputs: (parity?.outputs ?? []).map((o) => ({
      name: o.name,
      maxAbs: o.maxAbs,
      maxRel: o.maxRel,
      meanAbs: o.meanAbs,
      cosine: o.cosine,
      top1Agreement: o.top1Agreement,
    })),
    blocks,
    forms: {
      train: formCosts(parity?.forms.train, graphs.before, structure.params.total, stamps.input, shape),
      deploy: formCosts(parity?.forms.deploy, graphs.after, structure.params.afterFusion, stamps.output, shape),
    },
    before,
    after,
    createdAt: new Date().toISOString(),
  };
}
