import { FAMILIES, type FamilyLayout } from './families';
import { joinPath, type ModuleIndex, type TensorMeta } from './moduleIndex';
import type { Branch, BnNames } from './structure';

/** A block as the tensors describe it, before stage-level inference (stride, chaining) is applied. */
export interface RawBlock {
  name: string;
  family: FamilyLayout;
  branches: Branch[];
  deploy?: { weight: string; bias?: string; weightShape: readonly number[] };
  se?: { down: string; downBias?: string; up: string; upBias?: string };
  tensors: string[];
  warnings: string[];
}

const BN_PARAMS = ['weight', 'bias', 'running_mean', 'running_var'] as const;

function isConvWeight(t: TensorMeta | undefined): t is TensorMeta {
  return t !== undefined && t.shape.length === 4;
}

/** The module paths a family's marker modules ('rbr_dense.conv', 'rbr_reparam', ...) sit under. */
function blockPathsOf(index: ModuleIndex, family: FamilyLayout): string[] {
  // The 1×1 conv marks a block too, so that one whose k×k weight is missing is found and refused, not skipped.
  const markers = [family.dense.conv.replace('{i}', '0'), family.deploy, family.oneByOne.conv];
  const found: string[] = [];
  for (const module of index.modules()) {
    for (const marker of markers) {
      if (!isConvWeight(index.get(module, 'weight'))) continue;
      if (module === marker) found.push('');
      else if (module.endsWith(`.${marker}`)) found.push(module.slice(0, -marker.length - 1));
    }
  }
  return [...new Set(found)];
}

/**
 * Which family owns each block path. Families that share block names (RepVGG and
 * YOLOv6; timm and MobileOne in deploy form) are told apart by names elsewhere in the model.
 */
function assignFamilies(index: ModuleIndex): Map<string, FamilyLayout> {
  const names = index.tensors.map((t) => t.name);
  const hinted = (f: FamilyLayout) => f.modelHint !== undefined && names.some((n) => f.modelHint!.test(n));
  const owner = new Map<string, FamilyLayout>();
  for (const family of FAMILIES) {
    if (family.modelHint && !hinted(family)) continue;
    for (const path of blockPathsOf(index, family)) {
      if (!owner.has(path)) owner.set(path, family);
    }
  }
  return owner;
}

function bnNames(index: ModuleIndex, module: string, family: FamilyLayout, used: string[], warnings: string[]): BnNames | undefined {
  const missing = BN_PARAMS.filter((p) => !index.get(module, p));
  if (missing.length === BN_PARAMS.length) return undefined;
  if (missing.length > 0) {
    warnings.push(`${module}: BatchNorm tensors missing: ${missing.join(', ')}`);
    return undefined;
  }
  for (const p of index.params(module)) used.push(p.name);
  const eps = index.numberAttribute(module, 'eps');
  return {
    weight: joinPath(module, 'weight'),
    bias: joinPath(module, 'bias'),
    mean: joinPath(module, 'running_mean'),
    var: joinPath(module, 'running_var'),
    eps: eps ?? family.defaultEps,
    epsSource: eps === undefined ? 'family-default' : 'attribute',
  };
}

function convBranch(index: ModuleIndex, role: Branch['role'], convPath: string, bnPath: string, family: FamilyLayout, used: string[], warnings: string[]): Branch | undefined {
  const weight = index.get(convPath, 'weight');
  if (!isConvWeight(weight)) return undefined;
  used.push(weight.name);
  const bias = index.get(convPath, 'bias');
  if (bias) used.push(bias.name);
  const bn = bnNames(index, bnPath, family, used, warnings);
  if (!bn) warnings.push(`${convPath}: no BatchNorm found at ${bnPath}`);
  return { role, module: convPath, convWeight: weight.name, convBias: bias?.name, weightShape: weight.shape, bn };
}

function detectBlock(index: ModuleIndex, path: string, family: FamilyLayout): RawBlock {
  const at = (suffix: string) => joinPath(path, suffix);
  const tensors: string[] = [];
  const warnings: string[] = [];
  const branches: Branch[] = [];

  const numbered = family.dense.conv.includes('{i}');
  for (let i = 0; ; i++) {
    const conv = at(family.dense.conv.replace('{i}', String(i)));
    const bn = at(family.dense.bn.replace('{i}', String(i)));
    const branch = convBranch(index, 'dense', conv, bn, family, tensors, warnings);
    if (branch) branches.push(branch);
    if (!numbered || !branch) break;
  }
  const oneByOne = convBranch(index, 'oneByOne', at(family.oneByOne.conv), at(family.oneByOne.bn), family, tensors, warnings);
  if (oneByOne) branches.push(oneByOne);
  const identityBn = bnNames(index, at(family.identity), family, tensors, warnings);
  // An incomplete identity BN stays a branch without BN names, so fusion refuses the block instead of dropping it.
  if (identityBn || index.has(at(family.identity))) branches.push({ role: 'identity', module: at(family.identity), bn: identityBn });
  if (branches.length > 0 && !branches.some((b) => b.role === 'dense')) warnings.push(`no ${family.dense.conv.replace('{i}', '0')} weight: the k×k branch is missing`);

  let deploy: RawBlock['deploy'];
  const deployWeight = index.get(at(family.deploy), 'weight');
  if (isConvWeight(deployWeight)) {
    const bias = index.get(at(family.deploy), 'bias');
    tensors.push(deployWeight.name, ...(bias ? [bias.name] : []));
    deploy = { weight: deployWeight.name, bias: bias?.name, weightShape: deployWeight.shape };
  }

  let se: RawBlock['se'];
  if (family.se) {
    const down = index.get(at(family.se.down), 'weight');
    const up = index.get(at(family.se.up), 'weight');
    if (down && up) {
      const downBias = index.get(at(family.se.down), 'bias');
      const upBias = index.get(at(family.se.up), 'bias');
      se = { down: down.name, downBias: downBias?.name, up: up.name, upBias: upBias?.name };
      for (const t of [down, downBias, up, upBias]) if (t) tensors.push(t.name);
    }
  }
  return { name: path, family, branches, deploy, se, tensors, warnings };
}

/** Every re-parameterizable block in the file, in the order their tensors appear. */
export function detectBlocks(index: ModuleIndex): RawBlock[] {
  const order = new Map(index.tensors.map((t, i) => [t.name, i]));
  const blocks = [...assignFamilies(index)].map(([path, family]) => detectBlock(index, path, family));
  const firstTensor = (b: RawBlock) => Math.min(...b.tensors.map((n) => order.get(n) ?? Infinity));
  return blocks.sort((a, b) => firstTensor(a) - firstTensor(b));
}
