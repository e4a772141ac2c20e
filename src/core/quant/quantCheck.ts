import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { WeightsChoice } from '../formats/modelFile';
import type { OnnxGraph, OnnxNode } from '../formats/onnxModel';
import { openModelFile } from '../formats/openModelFile';
import { blockNamer, buildGraph, type BuiltGraph } from '../graph/buildGraph';
import type { Topology } from '../graph/topology';
import { buildStructure, type StructureOptions } from '../model/buildStructure';
import { allBlocks } from '../model/structure';
import { runInChild, type ChildOptions } from '../parity/child';
import type { Metrics } from '../parity/compare';
import { ParityError } from '../parity/errors';
import { readNpy } from '../parity/npy';
import { DEFAULTS } from '../parity/options';
import { NormalRandom } from '../parity/prng';
import { WorkFolder } from '../parity/workFolder';
import type { Feed } from '../parity/workerMessages';
import type { Int8Block, Int8Calibration, Int8Cause, Int8Output, Int8Report } from '../../shared/int8Data';
import { IMAGE_SUFFIXES, imageInput, type ImageNormalization } from './calibrationImages';
import { QdqGraph, quantizedActivations, type QuantVariant } from './qdq';

/**
 * INT8 readiness: the deploy form of a checkpoint quantized the way static post-training quantization
 * does it (qdq.ts), run beside the float deploy form on the same inputs in the inference process.
 * The model as a whole gives the output errors; each block, quantized alone on its float input,
 * gives its own error under INT8, with weights only and with activations only, so the cause can
 * be told apart. Every error is ‖int8 − float‖₂ / ‖float‖₂ at that output.
 */

export type Calibration = Int8Calibration['method'];

export interface QuantCheckOptions extends StructureOptions {
  /** Random input samples (default 4), used to calibrate and to measure. */
  inputs?: number;
  /** [batch, channels, height, width] of each graph input (default 1×C×224×224, 32×32 for block-wise graphs). */
  shape?: readonly number[];
  seed?: number;
  /**
   * A calibration file, or a folder of them, used instead of random samples: .npy arrays ([N, C, H, W] or
   * [C, H, W]) or PNG/JPEG images, made to fit the input (`shape`'s height and width, 224×224 by default).
   */
  calib?: string;
  /** How images become inputs: ImageNet's mean and std (default), or just 0…1 (YOLO). */
  imageNormalization?: ImageNormalization;
  /** How activation ranges are taken from the calibration inputs (default min/max). */
  calibration?: Calibration;
  eps?: number;
  weights?: string;
  workerPath?: string;
  timeoutSeconds?: number;
  signal?: AbortSignal;
}

export interface QuantCheckResult extends Int8Report {
  file: string;
  topology: Topology;
  weights?: WeightsChoice;
  notes: string[];
}

/** A channel that sets a per-tensor range when its own range is this many times the median channel's. */
const OUTLIER_RATIO = 4;
/** Below this error a block is within what rounding to 8 bits costs any well-spread tensor (≈ 40 dB): nothing to fix. */
export const NOTABLE_ERROR = 0.02;
const PERCENTILE = 0.9999;
const CALIBRATION_SUFFIXES = ['.npy', ...IMAGE_SUFFIXES];

const VARIANTS: Record<string, Omit<QuantVariant, 'activations'> & { activations: boolean }> = {
  int8: { suffix: 'int8', weights: 'per-tensor', activations: true },
  weights: { suffix: 'w', weights: 'per-tensor', activations: false },
  activations: { suffix: 'a', activations: true },
  int8PerChannel: { suffix: 'int8-pc', weights: 'per-channel', activations: true },
  weightsPerChannel: { suffix: 'w-pc', weights: 'per-channel', activations: false },
};

function fail(file: string, reason: string): never {
  throw new ParityError(file, reason, 'input');
}

/** The nodes of one block in a graph RepLens built: the one whose output is the block, and those named under it. */
function blockNodes(graph: OnnxGraph, block: string): OnnxNode[] {
  return graph.node.filter((n) => n.output.some((o) => o === block || o.startsWith(`${block}/`)));
}

/** The largest |value| of each channel of an [N, C, ...] tensor, and the channel that sets the largest, against the median channel. */
function channelOutlier(maxAbs: readonly number[]): { channel: number; ratio: number } | null {
  if (maxAbs.length < 2) return null;
  const sorted = [...maxAbs].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1];
  const channel = maxAbs.indexOf(sorted.at(-1)!);
  return { channel, ratio: median > 0 ? sorted.at(-1)! / median : Infinity };
}

interface ActivationStats {
  lo: number;
  hi: number;
  channelMaxAbs: number[];
}

function activationStats(feeds: readonly Feed[], method: Calibration): ActivationStats {
  const channels = feeds[0].dims[1] ?? 1;
  const channelMaxAbs = new Array<number>(channels).fill(0);
  let lo = Infinity;
  let hi = -Infinity;
  for (const f of feeds) {
    const per = f.data.length / (f.dims[0] * channels);
    for (let i = 0; i < f.data.length; i++) {
      const v = f.data[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      const c = Math.floor(i / per) % channels;
      if (Math.abs(v) > channelMaxAbs[c]) channelMaxAbs[c] = Math.abs(v);
    }
  }
  if (method === 'percentile') {
    const all = new Float32Array(feeds.reduce((n, f) => n + f.data.length, 0));
    let at = 0;
    for (const f of feeds) {
      all.set(f.data, at);
      at += f.data.length;
    }
    all.sort();
    const pick = (q: number) => all[Math.min(all.length - 1, Math.max(0, Math.round(q * (all.length - 1))))];
    [lo, hi] = [pick(1 - PERCENTILE), pick(PERCENTILE)];
  }
  return { lo, hi, channelMaxAbs };
}

/** The calibration inputs: the user's .npy files, or seeded normal samples of each graph input's shape. */
/** A calibration file's input: an .npy array ([N, C, H, W] or [C, H, W]) or a PNG/JPEG image made to fit the input. */
async function fileInput(f: string, input: BuiltGraph['inputs'][number], options: QuantCheckOptions): Promise<Feed> {
  if (IMAGE_SUFFIXES.some((s) => f.toLowerCase().endsWith(s))) {
    if (input.channels !== 3) fail(f, `is an RGB image; the model's input has ${input.channels} channels`);
    const size = options.shape ?? [1, 3, DEFAULTS.size, DEFAULTS.size];
    return { name: input.name, ...(await imageInput(f, size[2], size[3], options.imageNormalization ?? 'imagenet')) };
  }
  const array = await readNpy(f);
  const dims = array.shape.length === 3 ? [1, ...array.shape] : [...array.shape];
  if (dims.length !== 4 || dims[1] !== input.channels) {
    fail(f, `holds an array of shape [${array.shape.join(', ')}]; the model's input takes [N, ${input.channels}, H, W]`);
  }
  return { name: input.name, dims, data: Float32Array.from(array.data) };
}

/** The calibration inputs: the user's .npy arrays or images, or seeded normal samples of each graph input's shape. */
async function calibrationFeeds(built: BuiltGraph, options: QuantCheckOptions, file: string): Promise<{ samples: Feed[][]; files: string[] }> {
  if (options.calib) {
    if (built.inputs.length !== 1) fail(file, `calibration files fit a graph with one input; this one has ${built.inputs.length} (${built.topology})`);
    const stat = await fs.stat(options.calib).catch(() => fail(options.calib!, 'does not exist'));
    const usable = (n: string) => [...CALIBRATION_SUFFIXES].some((s) => n.toLowerCase().endsWith(s));
    const files = stat.isDirectory()
      ? (await fs.readdir(options.calib))
          .filter(usable)
          .sort()
          .map((n) => path.join(options.calib!, n))
      : [options.calib];
    if (files.length === 0) fail(options.calib, `holds no calibration files (${CALIBRATION_SUFFIXES.join(', ')})`);
    const samples: Feed[][] = [];
    for (const f of files) samples.push([await fileInput(f, built.inputs[0], options)]);
    return { samples, files };
  }
  const count = options.inputs ?? DEFAULTS.inputs;
  const size = built.topology === 'blockwise' ? DEFAULTS.blockwiseSize : DEFAULTS.size;
  const random = new NormalRandom(options.seed ?? DEFAULTS.seed);
  const samples = Array.from({ length: count }, () =>
    built.inputs.map((input) => {
      const dims = options.shape ? [options.shape[0], input.channels, options.shape[2], options.shape[3]] : [1, input.channels, size, size];
      const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
      for (let i = 0; i < data.length; i++) data[i] = random.next();
      return { name: input.name, dims, data };
    }),
  );
  return { samples, files: [] };
}

/** What the numbers say about a block: the cause of its INT8 error, and what to do about it. */
export function diagnose(block: Omit<Int8Block, 'cause' | 'advice' | 'name'>): { cause: Int8Cause; advice: string } {
  const { int8Error, weightError, activationError, perChannel, activationOutlier, weightOutlier } = block;
  const pct = (x: number) => `${(100 * x).toPrecision(2)} %`;
  if (!(int8Error > NOTABLE_ERROR)) return { cause: 'none', advice: `within ordinary INT8 rounding (under ${100 * NOTABLE_ERROR} %)` };
  if (weightError >= activationError) {
    const who =
      weightOutlier && weightOutlier.ratio >= OUTLIER_RATIO
        ? `; output channel ${weightOutlier.channel}'s kernel is ${weightOutlier.ratio.toFixed(1)}× the median channel's`
        : '';
    const change = `weight error ${pct(weightError)} per tensor, ${pct(perChannel.weightError)} per channel${who}`;
    if (perChannel.weightError <= NOTABLE_ERROR) return { cause: 'per-tensor weights', advice: `per-channel weights fix this block (${change})` };
    return {
      cause: 'weights',
      advice: `its fused kernel loses precision even per channel (${change}): consider QARepVGG-style training or keeping this block in FP16`,
    };
  }
  const who =
    activationOutlier && activationOutlier.ratio >= OUTLIER_RATIO
      ? `activation range dominated by channel ${activationOutlier.channel} (${activationOutlier.ratio.toFixed(1)}× the median channel's)`
      : 'its input activations lose the most';
  return { cause: 'activation range', advice: `${who}: consider QARepVGG-style training or keeping this block in FP16` };
}

type Outlier = { channel: number; ratio: number } | null;
type VariantKey = keyof typeof VARIANTS;
/** One comparison in the INT8 run: a float tensor and its quantized copy, for a block or for a model output. */
type QuantPair = { reference: string; candidate: string; block?: string; variant: VariantKey };

/** The deploy form of a checkpoint as a float graph held in memory, with each block's weight outlier (by shown name). */
async function deployGraph(
  file: string,
  options: QuantCheckOptions,
): Promise<{ built: BuiltGraph; weightOutliers: Map<string, Outlier>; weights?: WeightsChoice }> {
  const model = await openModelFile(file, { weights: options.weights });
  const weightOutliers = new Map<string, Outlier>();
  try {
    if (model.format === 'onnx') fail(file, 'quantize-check reads PyTorch and safetensors checkpoints; check the checkpoint this ONNX model came from');
    const structure = buildStructure(model, options);
    if (allBlocks(structure).length === 0) fail(file, 'no re-parameterizable blocks found');
    const displayName = blockNamer(model);
    const built = await buildGraph(model, structure, {
      form: 'deploy',
      eps: options.eps,
      onBlockKernel: (block, kernel, outChannels) => {
        const per = kernel.length / outChannels;
        const maxAbs = Array.from({ length: outChannels }, (_, c) => {
          let m = 0;
          for (let j = c * per; j < (c + 1) * per; j++) m = Math.max(m, Math.abs(kernel[j]));
          return m;
        });
        weightOutliers.set(displayName(block.name), channelOutlier(maxAbs));
      },
    });
    return { built, weightOutliers, ...(model.weights ? { weights: model.weights } : {}) };
  } finally {
    await model.close();
  }
}

/** Runs the float graph (at `floatModel`, every quantized activation an output) on every input, and takes each activation's range. */
async function calibrate(
  floatModel: string,
  activations: readonly string[],
  samples: Feed[][],
  method: Calibration,
  child: ChildOptions,
): Promise<Map<string, ActivationStats>> {
  const seen = new Map<string, Feed[]>();
  for (const sample of samples) {
    const reply = await runInChild(
      { type: 'infer', model: { label: `${child.subject} (deploy form)`, source: { path: floatModel } }, feeds: sample, optimization: 'disabled' },
      child,
    );
    for (const out of reply.outputs) if (activations.includes(out.name)) seen.set(out.name, [...(seen.get(out.name) ?? []), out]);
  }
  return new Map([...seen].map(([name, feeds]) => [name, activationStats(feeds, method)]));
}

/** Every block quantized alone on its float input, each way, and the whole model with both weight schemes, beside the float graph. */
function quantizedCopies(built: BuiltGraph, stats: ReadonlyMap<string, ActivationStats>): { qdq: QdqGraph; pairs: QuantPair[] } {
  const graph = built.model.graph!;
  const qdq = new QdqGraph(built.model);
  const pairs: QuantPair[] = [];
  const variant = (key: VariantKey): QuantVariant => ({ ...VARIANTS[key], activations: VARIANTS[key].activations ? stats : undefined });
  for (const block of built.blocks) {
    const nodes = blockNodes(graph, block);
    for (const key of Object.keys(VARIANTS) as VariantKey[]) {
      const copy = qdq.copy(nodes, variant(key));
      pairs.push({ reference: block, candidate: copy.get(block)!, block, variant: key });
    }
  }
  for (const key of ['int8', 'int8PerChannel'] as const) {
    const copy = qdq.copy(graph.node, { ...variant(key), suffix: `model-${VARIANTS[key].suffix}` });
    for (const out of built.outputs) pairs.push({ reference: out, candidate: copy.get(out)!, variant: key });
  }
  qdq.expose(pairs.map((p) => p.candidate));
  return { qdq, pairs };
}

/** Each block's numbers, worst first, and each output's, both weight schemes, from the run's metrics in `pairs` order. */
function findings(
  built: BuiltGraph,
  pairs: readonly QuantPair[],
  metrics: readonly Metrics[],
  stats: ReadonlyMap<string, ActivationStats>,
  weightOutliers: ReadonlyMap<string, Outlier>,
): { blocks: Int8Block[]; outputs: Int8Output[] } {
  const graph = built.model.graph!;
  const metric = (key: VariantKey, match: (p: QuantPair) => boolean) => metrics[pairs.findIndex((p) => p.variant === key && match(p))];
  const ofBlock = (name: string, key: VariantKey) => metric(key, (p) => p.block === name).relError;
  const blocks = built.blocks.map((name): Int8Block => {
    const input = blockNodes(graph, name)
      .map((n) => n.input[0])
      .find((x) => stats.has(x));
    const numbers = {
      int8Error: ofBlock(name, 'int8'),
      weightError: ofBlock(name, 'weights'),
      activationError: ofBlock(name, 'activations'),
      perChannel: { int8Error: ofBlock(name, 'int8PerChannel'), weightError: ofBlock(name, 'weightsPerChannel') },
      activationOutlier: input ? channelOutlier(stats.get(input)!.channelMaxAbs) : null,
      weightOutlier: weightOutliers.get(name) ?? null,
    };
    return { name, ...numbers, ...diagnose(numbers) };
  });
  blocks.sort((a, b) => b.int8Error - a.int8Error);
  const outputs = (['int8', 'int8PerChannel'] as const).flatMap((key) =>
    built.outputs.map((name): Int8Output => {
      const m = metric(key, (p) => p.block === undefined && p.reference === name);
      return {
        name,
        weights: VARIANTS[key].weights!,
        relError: m.relError,
        maxAbs: m.maxAbs,
        maxRel: m.maxRel,
        meanAbs: m.meanAbs,
        cosine: m.cosine,
        top1Agreement: m.top1Agreement,
      };
    }),
  );
  return { blocks, outputs };
}

/**
 * Quantizes the deploy form of `file` (a PyTorch or safetensors checkpoint) to INT8, calibrated on the
 * inputs, and measures what it costs per output and per block.
 */
export async function quantCheck(file: string, options: QuantCheckOptions = {}): Promise<QuantCheckResult> {
  const method = options.calibration ?? 'minmax';
  const { built, weightOutliers, weights } = await deployGraph(file, options);
  const { samples, files } = await calibrationFeeds(built, options, file);
  const activations = quantizedActivations(built.model.graph!);
  const folder = await WorkFolder.create(file);
  try {
    const child: ChildOptions = { subject: file, workerPath: options.workerPath, timeoutSeconds: options.timeoutSeconds, signal: options.signal };
    // The float deploy form, with each quantized activation as an output: calibrated on, and the reference.
    const float = new QdqGraph(built.model);
    float.expose(activations);
    const floatPath = await folder.write('calibration', float.model);
    const stats = await calibrate(floatPath, activations, samples, method, child);
    const { qdq, pairs } = quantizedCopies(built, stats);
    const reply = await runInChild(
      {
        type: 'parity',
        reference: { label: `${file} (deploy form)`, source: { path: floatPath } },
        candidate: { label: `${file} (INT8)`, source: { path: await folder.write('int8', qdq.model) } },
        samples,
        inputMap: Object.fromEntries(built.inputs.map((i) => [i.name, i.name])),
        pairs: pairs.map(({ reference, candidate }) => ({ reference, candidate })),
        tolerance: { atol: DEFAULTS.atol, rtol: DEFAULTS.rtol },
        latencyRuns: 0,
      },
      child,
    );
    return {
      file,
      topology: built.topology,
      inputs: samples.length,
      shape: samples[0][0].dims,
      calibration: { source: files.length > 0 ? 'files' : 'random', method, files },
      ...findings(built, pairs, reply.metrics, stats, weightOutliers),
      ...(weights ? { weights } : {}),
      notes: built.notes,
    };
  } finally {
    await folder.remove();
  }
}
