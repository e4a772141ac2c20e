import type { Block, Branch } from '../model/structure';
import { foldBn, identityKernel, padKernel, sumKernels, type BnStats, type Kernel } from './kernels';

/** A block that cannot be fused exactly; names the block and says why. */
export class FusionError extends Error {
  constructor(
    readonly block: string,
    readonly reason: string,
  ) {
    super(`${block}: ${reason}`);
    this.name = 'FusionError';
  }
}

export type LoadTensor = (name: string) => Promise<Float64Array>;

export interface FusedBlock {
  weight: Float64Array;
  bias: Float64Array;
  /** [out, in/groups, k, k] */
  shape: [number, number, number, number];
  /** The BN eps each branch was folded with (per branch module). */
  eps: Record<string, number>;
}

export interface FuseOptions {
  /** Replaces every BN eps (the file's and the family default). */
  eps?: number;
}

function checkFinite(block: string, name: string, values: Float64Array): void {
  for (let j = 0; j < values.length; j++) {
    if (!Number.isFinite(values[j])) throw new FusionError(block, `${name} contains ${values[j]} at index ${j}`);
  }
}

async function loadBn(block: Block, branch: Branch, load: LoadTensor, options: FuseOptions): Promise<BnStats> {
  if (!branch.bn) throw new FusionError(block.name, `${branch.module} has no complete BatchNorm`);
  const names = branch.bn;
  const [gamma, beta, mean, variance] = await Promise.all([names.weight, names.bias, names.mean, names.var].map(load));
  for (const [name, v] of [[names.weight, gamma], [names.bias, beta], [names.mean, mean], [names.var, variance]] as const) {
    checkFinite(block.name, name, v);
    if (v.length !== block.outChannels) throw new FusionError(block.name, `${name} has ${v.length} values, expected ${block.outChannels}`);
  }
  const eps = options.eps ?? names.eps;
  for (let c = 0; c < variance.length; c++) {
    if (!(variance[c] + eps > 0)) throw new FusionError(block.name, `${names.var}[${c}] = ${variance[c]}: running_var + eps must be positive`);
  }
  return { gamma, beta, mean, var: variance, eps };
}

function checkFusible(block: Block): void {
  if (block.form !== 'train') throw new FusionError(block.name, 'is already in deploy form');
  const k = block.kernel;
  if (k % 2 === 0) throw new FusionError(block.name, `kernel ${k}×${k} is even: a smaller kernel cannot be centred in it`);
  if (block.dilation !== 1) throw new FusionError(block.name, `dilation ${block.dilation}: branches with different receptive fields cannot be summed`);
  if (block.padding !== Math.floor(k / 2)) throw new FusionError(block.name, `padding ${block.padding} with kernel ${k}: the 1×1 and identity branches would not align with the k×k branch`);
  if (!Number.isInteger(block.groups) || block.groups < 1 || block.inChannels % block.groups !== 0) throw new FusionError(block.name, `groups ${block.groups} does not divide in_channels ${block.inChannels}`);
  const inPerGroup = block.inChannels / block.groups;
  for (const b of block.branches) {
    if (!b.weightShape) continue;
    const [o, i, kh, kw] = b.weightShape;
    if (o !== block.outChannels || i !== inPerGroup) throw new FusionError(block.name, `${b.module} weight [${b.weightShape.join(', ')}] does not match ${block.outChannels}×${inPerGroup}`);
    if (kh !== kw || kh % 2 === 0 || kh > k) throw new FusionError(block.name, `${b.module} kernel ${kh}×${kw} cannot be centred in ${k}×${k}`);
  }
  if (block.branches.some((b) => b.role === 'identity') && block.inChannels !== block.outChannels) {
    throw new FusionError(block.name, `identity branch with in_channels ${block.inChannels} ≠ out_channels ${block.outChannels}`);
  }
}

/** One train-form block → the equivalent single k×k conv with bias (float64, not yet rounded). */
export async function fuseBlock(block: Block, load: LoadTensor, options: FuseOptions = {}): Promise<FusedBlock> {
  checkFusible(block);
  const k = block.kernel;
  const inPerGroup = block.inChannels / block.groups;
  const kernels: Kernel[] = [];
  const eps: Record<string, number> = {};
  for (const branch of block.branches) {
    const bn = await loadBn(block, branch, load, options);
    eps[branch.module] = bn.eps;
    let weight: Float64Array;
    let convBias: Float64Array | undefined;
    if (branch.role === 'identity') {
      weight = identityKernel(block.outChannels, inPerGroup, k);
    } else {
      const raw = await load(branch.convWeight!);
      checkFinite(block.name, branch.convWeight!, raw);
      weight = padKernel(raw, branch.weightShape!, k);
      if (branch.convBias) checkFinite(block.name, branch.convBias, (convBias = await load(branch.convBias)));
    }
    kernels.push(foldBn(weight, block.outChannels, bn, convBias));
  }
  if (kernels.length === 0) throw new FusionError(block.name, 'has no branches to fuse');
  const { weight, bias } = sumKernels(kernels);
  return { weight, bias, shape: [block.outChannels, inPerGroup, k, k], eps };
}
