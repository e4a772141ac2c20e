import { ReplensError } from '../formats/errors';
import type { OnnxModel } from '../formats/onnxModel';
import type { ModelFile } from '../formats/modelFile';
import type { Tensor } from '../formats/tensor';
import { fuseBlockEncoded, type BlockKernelListener } from '../fuse/fuseBlock';
import { familyById } from '../model/families';
import { allBlocks, type Block, type BnNames, type ModelStructure } from '../model/structure';
import type { InitializerStore } from '../writers/externalData';
import { OnnxBuilder, type Dim } from './onnxBuilder';
import { planTopology, type Topology } from './topology';

/** A graph could not be built for a block; names the block (or file) and says why. */
export class GraphError extends ReplensError {
  constructor(subject: string, reason: string) {
    super(subject, reason);
    this.name = 'GraphError';
  }
}

/**
 * 'as-is': every block as the file has it (train blocks with their branches and BatchNorms,
 * deploy blocks as one conv). 'deploy': train blocks are fused with fuseBlock first.
 */
export type GraphForm = 'as-is' | 'deploy';

export interface GraphOptions {
  form: GraphForm;
  /** Replaces every BN eps, in BatchNormalization nodes and in fusion alike. */
  eps?: number;
  onBlock?: (done: number, total: number, block: Block) => void;
  /** Where the initializers' bytes go (default: into the model); see ExternalDataFile. */
  store?: InitializerStore;
  /**
   * Each block's one conv kernel as it goes into a deploy-form graph ([out, in/groups, k, k]): fused
   * here, or as the file stores it. Not called for a stored kernel that a kept BatchNorm still
   * follows, which is not the kernel that runs.
   */
  onBlockKernel?: BlockKernelListener;
}

export interface BuiltGraph {
  model: OnnxModel;
  topology: Topology;
  /** The form of the blocks in the graph. */
  form: 'train' | 'deploy' | 'mixed';
  /** Graph inputs, each [batch, channels, height, width] with symbolic batch/height/width. */
  inputs: { name: string; channels: number }[];
  /** Outputs of the model itself: the logits, the last block of a chain, or every block when blockwise. */
  outputs: string[];
  /** Block names; each block's output is a graph output of that name. */
  blocks: string[];
  notes: string[];
}

/** Symbolic sizes: one graph serves any input size, the caller picks it when running. */
const SPATIAL: readonly Dim[] = ['height', 'width'];
const BATCH = 'batch';
export const CHAIN_INPUT = 'input';
export const LOGITS = 'output';

/**
 * Names blocks as graphs, parity results and reports show them: a DataParallel 'module.' prefix on
 * every tensor is dropped, as the deploy writer drops it.
 */
export function blockNamer(file: ModelFile): (name: string) => string {
  const prefixed = file.tensors.length > 0 && file.tensors.every((t) => t.name.startsWith('module.'));
  return (name) => (prefixed && name.startsWith('module.') ? name.slice('module.'.length) : name);
}

class BlockEmitter {
  constructor(
    private readonly g: OnnxBuilder,
    private readonly tensors: Map<string, Tensor>,
    private readonly options: GraphOptions,
  ) {}

  private tensor(block: Block, name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new GraphError(block.name, `tensor '${name}' is missing from the file`);
    return t;
  }

  private async init(block: Block, name: string, dims?: readonly number[], seen?: (values: Float32Array) => void): Promise<string> {
    const t = this.tensor(block, name);
    const values = await t.toFloat32();
    seen?.(values);
    return this.g.initializer(name, dims ?? t.shape, values);
  }

  private conv(
    block: Block,
    x: string,
    out: string,
    weight: string,
    weightShape: readonly number[],
    bias: string | undefined,
    stride: number,
    pad: number,
    dilation: number,
  ): string {
    const [, , kh, kw] = weightShape;
    if (pad < 0) throw new GraphError(block.name, `a ${kh}×${kw} branch would need padding ${pad} to line up with the ${block.kernel}×${block.kernel} branch`);
    return this.g.node('Conv', bias ? [x, weight, bias] : [x, weight], out, {
      kernel_shape: [kh, kw],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
      dilations: [dilation, dilation],
      group: block.groups,
    });
  }

  private async batchNorm(block: Block, module: string, bn: BnNames | undefined, x: string, out: string): Promise<string> {
    if (!bn) throw new GraphError(block.name, `${module} has no complete BatchNorm`);
    const inputs = [x];
    for (const name of [bn.weight, bn.bias, bn.mean, bn.var]) inputs.push(await this.init(block, name));
    return this.g.node('BatchNormalization', inputs, out, { epsilon: this.options.eps ?? bn.eps }, ['epsilon']);
  }

  /**
   * The branches as the family computes them: conv + BN, a bare conv (its own bias, if any), the
   * identity (BN, or the input itself), a p×p AveragePool (zero padding counted, as PyTorch's
   * AvgPool2d by default), summed by Adds in the family's branch order.
   */
  private async trainBranches(block: Block, x: string, name: string, stride: number): Promise<string> {
    const outs: string[] = [];
    for (const branch of block.branches) {
      const tag = `${name}/${branch.module.slice(block.name.length + 1)}`;
      if (branch.role === 'identity') {
        outs.push(branch.withoutBn ? x : await this.batchNorm(block, branch.module, branch.bn, x, `${tag}/bn`));
        continue;
      }
      if (branch.role === 'avgPool') {
        const p = branch.poolKernel;
        if (p === undefined) throw new GraphError(block.name, `${branch.module}: the AvgPool window is not known`);
        const pad = block.padding - (block.kernel - p) / 2;
        if (pad < 0 || !Number.isInteger(pad))
          throw new GraphError(block.name, `a ${p}×${p} AvgPool would need padding ${pad} to line up with the ${block.kernel}×${block.kernel} branch`);
        outs.push(
          this.g.node('AveragePool', [x], `${tag}/pool`, { kernel_shape: [p, p], strides: [stride, stride], pads: [pad, pad, pad, pad], count_include_pad: 1 }),
        );
        continue;
      }
      const shape = branch.weightShape!;
      const w = await this.init(block, branch.convWeight!);
      const b = branch.convBias ? await this.init(block, branch.convBias) : undefined;
      // A smaller kernel is centred in the k×k one: its padding shrinks by the difference.
      const pad = block.padding - (block.kernel - shape[2]) / 2;
      const conv = this.conv(block, x, `${tag}/conv`, w, shape, b, stride, pad, shape[2] === 1 ? 1 : block.dilation);
      outs.push(branch.withoutBn ? conv : await this.batchNorm(block, branch.module, branch.bn, conv, `${tag}/bn`));
    }
    if (outs.length === 0) throw new GraphError(block.name, 'has no branches');
    // A block of one bare identity would have nothing to add; the sum is then the input itself.
    if (outs.length === 1) return outs[0] === x ? this.g.node('Identity', [x], `${name}/sum`) : outs[0];
    let sum = outs[0];
    for (let i = 1; i < outs.length; i++) sum = this.g.node('Add', [sum, outs[i]], i === outs.length - 1 ? `${name}/sum` : `${name}/sum${i}`);
    return sum;
  }

  /**
   * The block as one conv. A train block is fused here with its post-sum BN folded in, so the conv
   * is the whole block; a deploy block is its stored conv, after which a post-sum BN the file
   * keeps (YOLOv6 QARepVGG's deploy form) still has to be applied: `postBnLeft` says so.
   */
  private async deployConv(block: Block, x: string, name: string, stride: number): Promise<{ y: string; postBnLeft: boolean }> {
    const deployModule = `${block.name}.${familyById(block.family).deploy}`;
    if (block.form === 'deploy') {
      const d = block.deploy!;
      const postBnLeft = block.postBn !== undefined;
      const w = await this.init(block, d.weight, undefined, postBnLeft ? undefined : (values) => this.options.onBlockKernel?.(block, values, d.weightShape[0]));
      const b = d.bias ? await this.init(block, d.bias) : undefined;
      return { y: this.conv(block, x, `${name}/reparam`, w, d.weightShape, b, stride, block.padding, block.dilation), postBnLeft };
    }
    // Fused in float64 and rounded once to float32, as a float32 deploy file holds it.
    const load = (t: string) => this.tensor(block, t).toNumbers();
    const fused = await fuseBlockEncoded(block, load, 'float32', { eps: this.options.eps, postBn: 'fold' });
    const floats = (bytes: Uint8Array) => new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    this.options.onBlockKernel?.(block, floats(fused.weight), fused.shape[0]);
    const w = await this.g.initializer(`${deployModule}.weight`, fused.shape, floats(fused.weight));
    const b = await this.g.initializer(`${deployModule}.bias`, [fused.shape[0]], floats(fused.bias));
    return { y: this.conv(block, x, `${name}/reparam`, w, fused.shape, b, stride, block.padding, 1), postBnLeft: false };
  }

  /** Squeeze-excitation on the branch sum, before the activation, as upstream RepVGG, MobileOne and mmpretrain do. */
  private async se(block: Block, x: string, name: string): Promise<string> {
    const se = block.se!;
    const pointwise = (t: Tensor) => (t.shape.length === 2 ? [t.shape[0], t.shape[1], 1, 1] : t.shape);
    const conv = async (input: string, weight: string, bias: string | undefined, out: string) => {
      const w = this.tensor(block, weight);
      const inputs = [input, await this.init(block, weight, pointwise(w))];
      if (bias) inputs.push(await this.init(block, bias));
      return this.g.node('Conv', inputs, out, { kernel_shape: [1, 1] });
    };
    const pooled = this.g.node('GlobalAveragePool', [x], `${name}/se/pool`);
    const down = await conv(pooled, se.down, se.downBias, `${name}/se/down`);
    const relu = this.g.node('Relu', [down], `${name}/se/relu`);
    const up = await conv(relu, se.up, se.upBias, `${name}/se/up`);
    const gate = this.g.node('Sigmoid', [up], `${name}/se/gate`);
    return this.g.node('Mul', [x, gate], `${name}/se/scale`);
  }

  /** Emits one block reading `x`; its activation output is named `name`. */
  async emit(block: Block, x: string, name: string, notes: string[]): Promise<void> {
    let stride = block.stride;
    if (stride === null) {
      notes.push(`${name}: stride unknown (not stored in the file); the graph uses 1, which does not change the comparison`);
      stride = 1;
    }
    const fuse = this.options.form === 'deploy' || block.form === 'deploy';
    let y: string;
    let postBnLeft = block.postBn !== undefined;
    if (fuse) ({ y, postBnLeft } = await this.deployConv(block, x, name, stride));
    else y = await this.trainBranches(block, x, name, stride);
    if (block.se) y = await this.se(block, y, name);
    // The BN after the sum (QARepVGG: bn(se(sum)); its SE is an nn.Identity).
    if (postBnLeft) y = await this.batchNorm(block, block.postBn!.weight.replace(/\.weight$/, ''), block.postBn, y, `${name}/post_bn`);
    if (familyById(block.family).activation === 'silu') {
      // Opset 13 has no SiLU op: x·σ(x), as PyTorch exports it.
      const gate = this.g.node('Sigmoid', [y], `${name}/act/sigmoid`);
      this.g.node('Mul', [y, gate], name);
    } else {
      this.g.node('Relu', [y], name);
    }
  }
}

/**
 * The graph of a model file's blocks, in train or deploy form, with every block's output
 * exposed. The topology (see planTopology) depends only on the file's names and shapes, so
 * the train form and the deploy form of one model always get the same inputs and outputs.
 */
export async function buildGraph(file: ModelFile, structure: ModelStructure, options: GraphOptions): Promise<BuiltGraph> {
  if (allBlocks(structure).length === 0) throw new GraphError(file.path, 'no re-parameterizable blocks to build a graph from');
  const plan = planTopology(file.tensors, structure, file.modules);
  const displayName = blockNamer(file);
  const forms = new Set(plan.blocks.map((b) => (options.form === 'deploy' ? 'deploy' : b.form)));
  const form: BuiltGraph['form'] = forms.size === 1 ? [...forms][0] : 'mixed';
  const g = new OnnxBuilder(`${structure.architecture} (${form})`, options.store);
  const emitter = new BlockEmitter(g, new Map(file.tensors.map((t) => [t.name, t])), options);
  const notes = [`topology ${plan.topology}: ${plan.reason}`];
  const inputs: BuiltGraph['inputs'] = [];
  const blocks: string[] = [];

  let x = '';
  for (const [i, block] of plan.blocks.entries()) {
    const name = displayName(block.name);
    if (i === 0 || plan.topology === 'blockwise') {
      x = g.input(plan.topology === 'blockwise' ? `${name}:input` : CHAIN_INPUT, [BATCH, block.inChannels, ...SPATIAL]);
      inputs.push({ name: x, channels: block.inChannels });
    }
    await emitter.emit(block, x, name, notes);
    // Height and width after the block depend on the strides before it: left unknown.
    g.output(name, [BATCH, block.outChannels, null, null]);
    blocks.push(name);
    x = name;
    options.onBlock?.(i + 1, plan.blocks.length, block);
  }

  let outputs = plan.topology === 'blockwise' ? blocks : [x];
  if (plan.head) {
    const tensor = (n: string) => file.tensors.find((t) => t.name === n)!;
    const pooled = g.node('GlobalAveragePool', [x], 'head/pool');
    const flat = g.node('Flatten', [pooled], 'head/flatten', { axis: 1 });
    const w = await g.initializer(plan.head.weight, tensor(plan.head.weight).shape, await tensor(plan.head.weight).toFloat32());
    const b = await g.initializer(plan.head.bias, tensor(plan.head.bias).shape, await tensor(plan.head.bias).toFloat32());
    g.node('Gemm', [flat, w, b], LOGITS, { transB: 1 });
    g.output(LOGITS, [BATCH, plan.head.classes]);
    outputs = [LOGITS];
  }

  const model = g.finish({ 'replens.topology': plan.topology, 'replens.form': form }, `${form} form of ${file.path}, built by RepLens`);
  return { model, topology: plan.topology, form, inputs, outputs, blocks, notes };
}
