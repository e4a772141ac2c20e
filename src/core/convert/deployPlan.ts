import type { BufferPool } from '../formats/bufferPool';
import type { ModelFile } from '../formats/modelFile';
import { piecesOf, PIECE_BYTES } from '../formats/byteReader';
import { encodeFromFloat64 } from '../formats/encode';
import { decodeToFloat64, DTYPE_BYTES, isFloatDType, type DType, type Tensor } from '../formats/tensor';
import { familyById } from '../model/families';
import { joinPath } from '../model/moduleIndex';
import type { Block, ModelStructure } from '../model/structure';
import { fuseBlockInPieces, type EncodedFusedPieces, type EncodeTarget, type FuseOptions } from '../fuse/fuseBlock';
import { cancelledError } from '../writers/atomicFile';
import type { OutputTensor } from '../writers/outputTensor';

export interface PlanOptions extends FuseOptions {
  /** Keep a DataParallel 'module.' prefix (dropped by default, like the upstream converter). */
  keepPrefix?: boolean;
  /** Write every floating-point tensor in this dtype instead of the input's. */
  dtype?: DType;
  /** Called after each block is fused. */
  onBlock?: (block: Block) => void;
  /** The pool the model file reads into: tensors go back to it once written or fused. */
  pool?: BufferPool;
  /** Blocks read ahead of the writer are not fused, nor reported, once this is aborted. */
  signal?: AbortSignal;
}

export interface DeployPlan {
  tensors: OutputTensor[];
  fused: Block[];
  passedThrough: Block[];
  /** The prefix that was dropped from every name, if any. */
  droppedPrefix?: string;
}

function commonDataParallelPrefix(names: readonly string[]): string | undefined {
  return names.length > 0 && names.every((n) => n.startsWith('module.')) ? 'module.' : undefined;
}

/** A tensor written as it is, or in another dtype, streamed in pieces. */
function renamed(tensor: Tensor, name: string, dtype: DType, pool?: BufferPool): OutputTensor {
  const pieces = () => piecesOf(tensor.reader(), tensor.byteLength, DTYPE_BYTES[tensor.dtype]);
  if (dtype === tensor.dtype) return { name, dtype, shape: tensor.shape, bytes: async () => pieces(), release: (bytes) => pool?.give(bytes) };
  async function* converted(): AsyncGenerator<Uint8Array> {
    for await (const piece of pieces()) {
      const values = decodeToFloat64(tensor.dtype, piece);
      pool?.give(piece);
      yield encodeFromFloat64(dtype, values);
    }
  }
  return { name, dtype, shape: tensor.shape, bytes: async () => converted() };
}

/**
 * What a deploy checkpoint does with a block's BatchNorm after the sum: where the family's own
 * deploy module keeps it (YOLOv6 QARepVGG: rbr_reparam + bn, "keep post bn for QAT"), the fused
 * conv is the pre-BN sum and the BN's tensors stay as they are, so the file loads strictly into
 * that module and equals its own re-parameterization; otherwise it is folded into the conv.
 */
export function postBnInDeploy(block: Block): 'fold' | 'keep' | undefined {
  if (!block.postBn) return undefined;
  return familyById(block.family).postBn?.keptInDeploy ? 'keep' : 'fold';
}

/** The post-sum BN's own tensors (num_batches_tracked included), which a 'keep' block passes through. */
function postBnTensors(block: Block): Set<string> {
  const module = block.postBn ? `${block.postBn.weight.replace(/\.weight$/, '')}.` : undefined;
  return new Set(module === undefined ? [] : block.tensors.filter((n) => n.startsWith(module) && !n.slice(module.length).includes('.')));
}

/**
 * The deploy-form state dict, in the input's order: each train block's tensors are
 * replaced, where its first tensor stood, by the fused conv; everything else
 * (SE, head, stem, other layers, and a post-sum BN the family keeps) is kept as it is.
 * Nothing is read until a writer asks.
 */
export function planDeploy(model: ModelFile, structure: ModelStructure, options: PlanOptions = {}): DeployPlan {
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const owner = new Map<string, Block>();
  const fused: Block[] = [];
  const passedThrough: Block[] = [];
  for (const stage of structure.stages) {
    for (const block of stage.blocks) {
      if (block.form === 'deploy') {
        passedThrough.push(block);
        continue;
      }
      fused.push(block);
      for (const name of block.tensors) owner.set(name, block);
    }
  }
  const prefix = options.keepPrefix ? undefined : commonDataParallelPrefix(model.tensors.map((t) => t.name));
  const outName = (name: string) => (prefix ? name.slice(prefix.length) : name);
  const outDType = (dtype: DType) => (options.dtype && isFloatDType(dtype) ? options.dtype : dtype);

  const tensors: OutputTensor[] = [];
  const emitted = new Set<Block>();
  const kept = new Map<Block, Set<string>>();
  const keptOf = (block: Block) => {
    let names = kept.get(block);
    if (!names) kept.set(block, (names = postBnInDeploy(block) === 'keep' ? postBnTensors(block) : new Set()));
    return names;
  };
  for (const tensor of model.tensors) {
    const block = owner.get(tensor.name);
    if (!block) {
      tensors.push(renamed(tensor, outName(tensor.name), outDType(tensor.dtype), options.pool));
      continue;
    }
    const se = block.se && [block.se.down, block.se.downBias, block.se.up, block.se.upBias].includes(tensor.name);
    if (se || keptOf(block).has(tensor.name)) {
      tensors.push(renamed(tensor, outName(tensor.name), outDType(tensor.dtype), options.pool));
      continue;
    }
    if (emitted.has(block)) continue;
    emitted.add(block);
    tensors.push(...fusedTensors(block, byName, options, outName));
  }
  return { tensors, fused, passedThrough, droppedPrefix: prefix };
}

function fusedTensors(block: Block, byName: Map<string, Tensor>, options: PlanOptions, outName: (name: string) => string): OutputTensor[] {
  const main = block.branches.find((b) => b.convWeight) ?? block.branches[0];
  const sourceDType = main.convWeight ? byName.get(main.convWeight)!.dtype : byName.get(main.bn!.weight)!.dtype;
  const dtype = options.dtype ?? sourceDType;
  const deployModule = joinPath(block.name, familyById(block.family).deploy);
  const k = block.kernel;
  const inPerGroup = block.inChannels / block.groups;
  // Weight and bias are written one after the other: fuse once, stream the weight, hand the bias over, forget both.
  let pending: Promise<EncodedFusedPieces> | undefined;
  const heardCancel = () => {
    if (options.signal?.aborted) throw cancelledError('(output)');
  };
  const pool = options.pool;
  const target: EncodeTarget = {
    allocate: (length) => pool?.take(length) ?? new Uint8Array(length),
    // Only the pool's own buffers were read for this block alone; any other array may be shared.
    mayOverwrite: (values) => pool?.owns(values) ?? false,
    release: (values) => pool?.give(values),
  };
  const fuse = async () => {
    heardCancel();
    const loaded: ArrayBufferView[] = [];
    const load = async (name: string) => {
      const values = await byName.get(name)!.toNumbers();
      loaded.push(values);
      return values;
    };
    const kernels = (name: string) => byName.get(name)!.valueReader();
    const fused = await fuseBlockInPieces(block, load, kernels, dtype, PIECE_BYTES, { ...options, postBn: postBnInDeploy(block) }, target);
    // The per-channel tensors are dead once folded into the block's terms.
    for (const values of loaded) pool?.give(values);
    return fused;
  };
  async function* weight(pieces: AsyncGenerator<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const piece of pieces) {
      heardCancel();
      yield piece;
    }
    options.onBlock?.(block);
  }
  const fusedOnce = () => (pending ??= fuse());
  return [
    {
      name: outName(`${deployModule}.weight`),
      dtype,
      shape: [block.outChannels, inPerGroup, k, k],
      bytes: async () => weight((await fusedOnce()).weight),
      release: (bytes) => pool?.give(bytes),
    },
    {
      name: outName(`${deployModule}.bias`),
      dtype,
      shape: [block.outChannels],
      bytes: async () => {
        const bias = (await fusedOnce()).bias;
        pending = undefined;
        return bias;
      },
    },
  ];
}
