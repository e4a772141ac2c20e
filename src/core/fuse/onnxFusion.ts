import { ModelFormatError } from '../formats/errors';
import type { ModelFile } from '../formats/modelFile';
import {
  newOnnxAttribute,
  newOnnxTensor,
  ONNX_DATA_TYPE,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
} from '../formats/onnxModel';
import { decodeToFloat64, type DType, type Tensor } from '../formats/tensor';
import { familyById } from '../model/families';
import { joinPath } from '../model/moduleIndex';
import { GraphIndex } from '../model/onnxGraph';
import { noOp } from '../model/onnxNoops';
import { namesReadIn, scopePath } from '../model/onnxStructure';
import { allBlocks, type Block, type ModelStructure } from '../model/structure';
import { fuseBlockEncoded, type BlockKernelListener, type FuseOptions } from './fuseBlock';

/*
 * Deploy form inside the ONNX graph: each block's nodes — convs, BatchNormalizations (the one
 * after the sum too), average pools, sums and the no-ops among them — become one Conv that writes
 * the block's output tensor under its old name, so every consumer, graph output and value_info
 * entry downstream stays as it was. Everything outside the blocks is kept as is, except nodes and
 * initializers that only the removed nodes read (a Constant 0 shared by several Adds).
 */

export interface OnnxFuseOptions extends Omit<FuseOptions, 'postBn'> {
  /** Called after each block is fused. */
  onBlock?: (block: Block) => void;
  /** Each block's fused kernel ([out, in/groups, k, k]), as the new Conv holds it. */
  onBlockKernel?: BlockKernelListener;
}

/** Per block, the tensor that holds its result in the train graph and in the fused graph. */
export interface OnnxBlockOutput {
  block: string;
  /** The tensor the block reads (present in both graphs). */
  input: string;
  original: string;
  fused: string;
}

export interface OnnxFusion {
  /** The rewritten model; the input model is not modified. */
  model: OnnxModel;
  fused: Block[];
  /** Train-form blocks left unfused in the graph, and why. */
  skipped: { block: Block; reason: string }[];
  alreadyDeploy: Block[];
  nodes: { before: number; after: number };
  initializers: { before: number; after: number };
}

/** protobuf cannot encode a message of 2 GiB or more, so an inlined model must stay below that. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

/**
 * Where each block's result lives in both graphs. Fusion gives the new Conv the old sum's output
 * name, so the two are the same tensor name; a parity engine can add them as graph outputs of
 * either model and compare block by block.
 */
export function onnxBlockOutputs(structure: ModelStructure): OnnxBlockOutput[] {
  return allBlocks(structure).flatMap((b) => (b.onnx ? [{ block: b.name, input: b.onnx.input, original: b.onnx.output, fused: b.onnx.output }] : []));
}

function onnxDataType(dtype: DType): number {
  const code = Object.entries(ONNX_DATA_TYPE).find(([, t]) => t.dtype === dtype)?.[0];
  return Number(code);
}

function newInitializer(name: string, dtype: DType, dims: readonly number[], rawData: Uint8Array): OnnxTensor {
  return newOnnxTensor({ name, dims: [...dims], dataType: onnxDataType(dtype), rawData });
}

/** `wanted`, or `wanted_1`, `wanted_2`, ... whichever is free; the name is then taken. */
function freeName(taken: Set<string>, wanted: string): string {
  let name = wanted;
  for (let i = 1; taken.has(name); i++) name = `${wanted}_${i}`;
  taken.add(name);
  return name;
}

/** The model's data all in the .onnx file, so the output stands alone (and never points into the input's data file). */
async function inlined(file: string, t: OnnxTensor, byName: ReadonlyMap<string, Tensor>): Promise<OnnxTensor> {
  if (t.dataLocation !== 1) return t;
  const tensor = byName.get(t.name ?? '');
  if (!tensor)
    throw new ModelFormatError(
      file,
      `initializer '${t.name}' keeps its data in an external file and has a type RepLens does not read, so it cannot be copied into the output`,
    );
  return { ...t, rawData: await tensor.readBytes(), dataLocation: undefined, externalData: [] };
}

interface Replacement {
  block: Block;
  node: OnnxNode;
  initializers: OnnxTensor[];
}

async function replacementFor(
  block: Block,
  graph: OnnxGraph,
  byName: ReadonlyMap<string, Tensor>,
  taken: Set<string>,
  nodeNames: Set<string>,
  options: OnnxFuseOptions,
): Promise<Replacement> {
  const site = block.onnx!;
  const ref = block.branches.find((b) => b.role === 'dense' && b.convWeight)!;
  // The Conv reads the same activations as before, so its weights keep the branches' type (fp16 stays fp16).
  const dtype = byName.get(ref.convWeight!)!.dtype;
  // The block becomes one Conv, so a BatchNorm after its sum is folded into it.
  const fused = await fuseBlockEncoded(block, (name) => byName.get(name)!.toNumbers(), dtype, { eps: options.eps, postBn: 'fold' });
  const marker = site.familySource === 'none' ? 'reparam' : familyById(block.family).deploy;
  const base = joinPath(block.name, marker);
  const weight = freeName(taken, `${base}.weight`);
  const bias = freeName(taken, `${base}.bias`);
  // Torch exporters name nodes by module scope; the new Conv sits where the block's deploy conv would.
  const scopes = site.nodes
    .map((i) => graph.node[i].name ?? '')
    .filter((n) => n.startsWith('/'))
    .map((n) => n.slice(0, n.lastIndexOf('/')));
  const scope = scopes.find((sc) => sc !== '' && scopePath(`${sc}/Add`) === block.name);
  const nodeName = freeName(nodeNames, scope !== undefined ? `${scope}/${marker}/Conv` : `/${base}/Conv`);
  const k = block.kernel;
  const p = Math.floor(k / 2);
  const domain = graph.node[site.nodes.find((i) => graph.node[i].opType === 'Conv')!].domain;
  const node: OnnxNode = {
    name: nodeName,
    opType: 'Conv',
    input: [site.input, weight, bias],
    output: [site.output],
    attribute: [
      newOnnxAttribute('dilations', 'INTS', [1, 1]),
      newOnnxAttribute('group', 'INT', [block.groups]),
      newOnnxAttribute('kernel_shape', 'INTS', [k, k]),
      newOnnxAttribute('pads', 'INTS', [p, p, p, p]),
      newOnnxAttribute('strides', 'INTS', [block.stride!, block.stride!]),
    ],
    ...(domain === undefined ? {} : { domain }),
  };
  if (options.onBlockKernel) options.onBlockKernel(block, decodeToFloat64(dtype, fused.weight), fused.shape[0]);
  options.onBlock?.(block);
  return {
    block,
    node,
    initializers: [newInitializer(weight, dtype, fused.shape, fused.weight), newInitializer(bias, dtype, [block.outChannels], fused.bias)],
  };
}

/**
 * Fuses every fusible train-form block of `structure` (built from `file`) inside the graph. Blocks
 * whose branches disagree (see OnnxBlockSite.fusible) stay in the graph unchanged, which is exact.
 * External data is read and inlined.
 */
export async function fuseOnnxModel(file: ModelFile, structure: ModelStructure, options: OnnxFuseOptions = {}): Promise<OnnxFusion> {
  const model = file.onnx;
  const graph = model?.graph;
  if (!model || !graph) throw new ModelFormatError(file.path, 'is not an ONNX model');
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const taken = new Set([...graph.initializer.map((t) => t.name ?? ''), ...graph.input.map((v) => v.name ?? ''), ...graph.node.flatMap((n) => n.output)]);
  const nodeNames = new Set(graph.node.map((n) => n.name ?? ''));

  const replacements: Replacement[] = [];
  const skipped: OnnxFusion['skipped'] = [];
  const alreadyDeploy: Block[] = [];
  const ix = new GraphIndex(graph, byName);
  for (const block of allBlocks(structure)) {
    if (block.form === 'deploy') {
      alreadyDeploy.push(block);
      continue;
    }
    const reason = block.onnx?.fusible ? await unverifiedNoOp(ix, block, byName) : block.warnings.join('; ');
    if (reason !== undefined) skipped.push({ block, reason });
    else replacements.push(await replacementFor(block, graph, byName, taken, nodeNames, options));
  }

  // Nodes: each block's last node becomes its Conv; its other nodes go, and so do nodes only they read.
  const atLast = new Map<number, Replacement>();
  const removedNodes = new Set<number>();
  for (const r of replacements) {
    for (const i of r.block.onnx!.nodes) removedNodes.add(i);
    atLast.set(
      r.block.onnx!.nodes.find((i) => graph.node[i].output.includes(r.block.onnx!.output))!,
      r,
    );
  }
  for (const i of deadAfterRemoval(
    graph,
    removedNodes,
    replacements.map((r) => r.node),
  ))
    removedNodes.add(i);
  const node: OnnxNode[] = [];
  graph.node.forEach((n, i) => {
    const r = atLast.get(i);
    if (r) node.push(r.node);
    else if (!removedNodes.has(i)) node.push(n);
  });

  // Initializers that only removed nodes read go; each block's new pair takes the place of its first.
  const stillRead = namesReadIn({ ...graph, node });
  for (const out of graph.output) stillRead.add(out.name ?? '');
  const readByRemoved = new Set([...removedNodes].flatMap((i) => graph.node[i].input));
  const ownerOf = new Map(replacements.flatMap((r) => r.block.tensors.map((name) => [name, r] as const)));
  const removedInitializers = new Set(
    graph.initializer.map((t) => t.name ?? '').filter((name) => (ownerOf.has(name) || readByRemoved.has(name)) && !stillRead.has(name)),
  );
  const placed = new Set<Replacement>();
  const initializer: OnnxTensor[] = [];
  for (const t of graph.initializer) {
    const name = t.name ?? '';
    if (!removedInitializers.has(name)) {
      initializer.push(await inlined(file.path, t, byName));
      continue;
    }
    const r = ownerOf.get(name);
    if (r && !placed.has(r)) initializer.push(...r.initializers);
    if (r) placed.add(r);
  }
  for (const r of replacements) if (!placed.has(r)) initializer.push(...r.initializers);
  const bytes = initializer.reduce((n, t) => n + (t.rawData?.length ?? 0), 0);
  if (bytes > PROTOBUF_LIMIT)
    throw new ModelFormatError(file.path, `the deploy model would hold ${bytes} bytes of weights, more than fits in one ONNX file (2 GiB)`);

  // Tensors that no longer exist lose their value_info; models that list initializers as inputs (IR < 4 style) list the new ones too.
  const keptOutputs = new Set(replacements.map((r) => r.block.onnx!.output));
  const gone = new Set(removedInitializers);
  for (const i of removedNodes) for (const out of graph.node[i].output) if (!keptOutputs.has(out)) gone.add(out);
  const initializerNames = new Set(graph.initializer.map((t) => t.name));
  const input = graph.input.filter((v) => !gone.has(v.name ?? ''));
  if (graph.input.some((v) => initializerNames.has(v.name))) {
    for (const t of replacements.flatMap((r) => r.initializers)) input.push(initializerInput(t));
  }

  return {
    model: { ...model, graph: { ...graph, node, initializer, input, valueInfo: graph.valueInfo.filter((v) => !gone.has(v.name ?? '')) } },
    fused: replacements.map((r) => r.block),
    skipped,
    alreadyDeploy,
    nodes: { before: graph.node.length, after: node.length },
    initializers: { before: graph.initializer.length, after: initializer.length },
  };
}

/**
 * Why a block cannot be fused after all: a no-op of it rests on a constant whose data was still in
 * the file when the block was found (an initializer 0 of an Add), and it does not hold the value.
 */
async function unverifiedNoOp(ix: GraphIndex, block: Block, byName: ReadonlyMap<string, Tensor>): Promise<string | undefined> {
  for (const i of block.onnx!.nodes) {
    for (const { tensor, equals } of noOp(ix, i)?.unverified ?? []) {
      const t = byName.get(tensor);
      const values = t ? await t.toFloat64() : undefined;
      if (!values?.every((v) => v === equals)) {
        return `${ix.label(i)}: ${tensor} ${values ? `is not ${equals} everywhere` : 'cannot be read'}, so the node is no no-op and the block cannot be one conv`;
      }
    }
  }
  return undefined;
}

/**
 * Nodes left without a reader once `removed` are gone (a Constant that only removed nodes read,
 * and so on up the graph). Only nodes that lost readers are taken: one already unread stays.
 */
function deadAfterRemoval(graph: OnnxGraph, removed: ReadonlySet<number>, added: readonly OnnxNode[]): number[] {
  const gone = new Set(removed);
  const dead: number[] = [];
  const lostReaders = new Set([...removed].flatMap((i) => graph.node[i].input));
  for (let changed = true; changed;) {
    changed = false;
    const read = namesReadIn({ ...graph, node: [...graph.node.filter((_, i) => !gone.has(i)), ...added] });
    for (const out of graph.output) read.add(out.name ?? '');
    graph.node.forEach((n, i) => {
      if (gone.has(i)) return;
      const outputs = n.output.filter((o) => o !== '');
      if (outputs.length === 0 || outputs.some((o) => read.has(o)) || !outputs.some((o) => lostReaders.has(o))) return;
      gone.add(i);
      dead.push(i);
      for (const input of n.input) lostReaders.add(input);
      changed = true;
    });
  }
  return dead;
}

function initializerInput(t: OnnxTensor): OnnxValueInfo {
  return { name: t.name, type: { tensorType: { elemType: t.dataType, shape: { dim: t.dims.map((d) => ({ dimValue: d })) } } } };
}
