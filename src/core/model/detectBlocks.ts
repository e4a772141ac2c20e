import { FAMILIES, type FamilyLayout } from './families';
import { joinPath, type ModuleIndex, type TensorMeta } from './moduleIndex';
import type { AbsentBranch, Branch, BnNames } from './structure';

export interface DetectOptions {
  /**
   * Which YOLOv6 class the QARepVGG blocks of a state dict are. QARepVGGBlockV2 adds an AvgPool
   * branch (`rbr_avg`) that has no tensors, so a state dict looks the same for both; without this
   * option such a file is read as QARepVGGBlock (v1), with a warning. A pickled module's class
   * names and module tree win over the option.
   */
  qarepvgg?: 'v1' | 'v2';
  /**
   * The file's tensor order is not the model's (safetensors writers sort by dtype and name): blocks
   * are then put in model order by name — numbers by value, a stem first.
   */
  orderByName?: boolean;
}

/** A branch without tensors whose presence the file cannot show (a state dict): resolveBlock decides it from the channels. */
export interface UndecidedBranch {
  role: 'identity' | 'avgPool';
  module: string;
  poolKernel?: number;
}

/** A block as the tensors describe it, before stage-level inference (stride, chaining) is applied. */
export interface RawBlock {
  name: string;
  family: FamilyLayout;
  branches: Branch[];
  deploy?: { weight: string; bias?: string; weightShape: readonly number[] };
  se?: { down: string; downBias?: string; up: string; upBias?: string };
  postBn?: BnNames;
  undecided: UndecidedBranch[];
  absent: AbsentBranch[];
  /** Set when the family was assumed between look-alikes the file cannot tell apart (QARepVGG v1/v2 in a state dict). */
  assumed?: string;
  tensors: string[];
  warnings: string[];
}

const BN_PARAMS = ['weight', 'bias', 'running_mean', 'running_var'] as const;
const QAREPVGG_V1 = 'yolov6-qarepvgg';
const QAREPVGG_V2 = 'yolov6-qarepvgg-v2';

export const QAREPVGG_ASSUMED_V1 =
  'QARepVGG blocks read from a state dict are taken as QARepVGGBlock (v1). A QARepVGGBlockV2 has one more branch, ' +
  "an AvgPool2d ('rbr_avg') that has no tensors, so a state dict cannot show it; if this model was built with " +
  "QARepVGGBlockV2 (YOLOv6 training_mode 'qarepvggv2'), tell RepLens (--qarepvgg v2), or its fused weights would " +
  'leave the AvgPool branch out. A checkpoint that pickles the whole model says which class it is.';

function isConvWeight(t: TensorMeta | undefined): t is TensorMeta {
  return t !== undefined && t.shape.length === 4;
}

/**
 * Whether the tensors at `path` carry what sets `family` apart from look-alikes with the same
 * marker names: QARepVGG's BatchNorm after the sum, or its bare 1×1 conv.
 */
function hasSignature(index: ModuleIndex, path: string, family: FamilyLayout): boolean {
  if (!family.postBn) return true;
  const bn = joinPath(path, family.postBn.module);
  if (BN_PARAMS.some((p) => index.get(bn, p)?.shape.length === 1)) return true;
  return family.oneByOne.bn === undefined && isConvWeight(index.get(joinPath(path, family.oneByOne.conv), 'weight'));
}

/** The module paths a family's marker modules ('rbr_dense.conv', 'rbr_reparam', ...) sit under. */
function blockPathsOf(index: ModuleIndex, family: FamilyLayout): string[] {
  // The 1×1 conv marks a block too, so that one whose k×k weight is missing is found and refused, not skipped.
  const markers = [family.dense.conv.replace('{i}', '0'), family.deploy, family.oneByOne.conv];
  const found: string[] = [];
  for (const module of index.modules()) {
    if (!isConvWeight(index.get(module, 'weight'))) continue;
    for (const marker of markers) {
      if (module === marker) found.push('');
      else if (module.endsWith(`.${marker}`)) found.push(module.slice(0, -marker.length - 1));
    }
  }
  return [...new Set(found)].filter((path) => hasSignature(index, path, family));
}

interface Assignment {
  family: FamilyLayout;
  /** The family was picked between look-alikes on an assumption the message explains. */
  assumed?: string;
}

/** QARepVGGBlock or QARepVGGBlockV2: the class name, else the module tree (is there an rbr_avg?), else the caller, else v1. */
function qarepvggVersion(index: ModuleIndex, path: string, candidates: readonly FamilyLayout[], options: DetectOptions): Assignment {
  const v1 = candidates.find((f) => f.id === QAREPVGG_V1)!;
  const v2 = candidates.find((f) => f.id === QAREPVGG_V2)!;
  const className = index.className(path);
  if (className !== undefined) {
    if (v2.className?.test(className)) return { family: v2 };
    if (v1.className?.test(className)) return { family: v1 };
    // A subclass under another name: the module tree shows whether it has the AvgPool branch.
    return { family: index.className(joinPath(path, v2.avgPool!)) !== undefined ? v2 : v1 };
  }
  if (options.qarepvgg === 'v2') return { family: v2 };
  if (options.qarepvgg === 'v1') return { family: v1 };
  return { family: v1, assumed: QAREPVGG_ASSUMED_V1 };
}

/**
 * Which family owns each block path. Families that share block names are told apart by what only
 * one of them has (QARepVGG's post-sum BN and bare 1×1), by the class of a pickled block, and by
 * names elsewhere in the model (RepVGG and YOLOv6; timm and MobileOne in deploy form).
 */
function assignFamilies(index: ModuleIndex, options: DetectOptions): Map<string, Assignment> {
  const names = index.tensors.map((t) => t.name);
  const hinted = (f: FamilyLayout) => f.modelHint === undefined || names.some((n) => f.modelHint!.test(n));
  const preferred = (f: FamilyLayout) => f.preferredBy?.(index.tensors) === true;
  // Families with a signature first: their blocks also carry the plain families' marker names; then those the model prefers.
  const rank = (f: FamilyLayout) => (f.postBn ? 0 : 2) + (preferred(f) ? 0 : 1);
  const families = FAMILIES.filter(hinted).sort((a, b) => rank(a) - rank(b));
  const candidates = new Map<string, FamilyLayout[]>();
  for (const family of families) {
    for (const path of blockPathsOf(index, family)) {
      const list = candidates.get(path);
      if (list) list.push(family);
      else candidates.set(path, [family]);
    }
  }
  const owner = new Map<string, Assignment>();
  for (const [path, list] of candidates) {
    const pool = list[0].postBn ? list.filter((f) => f.postBn) : list;
    if (pool.some((f) => f.id === QAREPVGG_V1) && pool.some((f) => f.id === QAREPVGG_V2)) {
      owner.set(path, qarepvggVersion(index, path, pool, options));
      continue;
    }
    const className = index.className(path);
    const byClass = className === undefined ? undefined : pool.find((f) => f.className?.test(className));
    owner.set(path, { family: byClass ?? pool[0] });
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

/** A conv branch; with `bnPath` undefined a bare conv (no BatchNorm by construction), summed as it is. */
function convBranch(
  index: ModuleIndex,
  role: Branch['role'],
  convPath: string,
  bnPath: string | undefined,
  family: FamilyLayout,
  used: string[],
  warnings: string[],
): Branch | undefined {
  const weight = index.get(convPath, 'weight');
  if (!isConvWeight(weight)) return undefined;
  used.push(weight.name);
  const bias = index.get(convPath, 'bias');
  if (bias) used.push(bias.name);
  if (bnPath === undefined) return { role, module: convPath, convWeight: weight.name, convBias: bias?.name, weightShape: weight.shape, withoutBn: true };
  const bn = bnNames(index, bnPath, family, used, warnings);
  if (!bn) warnings.push(`${convPath}: no BatchNorm found at ${bnPath}`);
  return { role, module: convPath, convWeight: weight.name, convBias: bias?.name, weightShape: weight.shape, bn };
}

/** The AvgPool branch as a pickled module describes it; anything but QARepVGGBlockV2's own AvgPool2d leaves the window unknown (fusion refuses). */
function avgPoolBranch(index: ModuleIndex, module: string, denseConv: string, warnings: string[]): Branch {
  const kernel = index.numberAttribute(module, 'kernel_size');
  const padding = index.numberAttribute(module, 'padding') ?? 0;
  const stride = index.numberAttribute(module, 'stride') ?? kernel;
  const convStride = index.numberAttribute(denseConv, 'stride');
  const problems: string[] = [];
  if (kernel === undefined) problems.push('its kernel_size is not stored');
  else if (padding !== Math.floor(kernel / 2)) problems.push(`padding ${padding} is not kernel_size//2 (${Math.floor((kernel ?? 0) / 2)})`);
  if (index.booleanAttribute(module, 'count_include_pad') === false) problems.push('count_include_pad is False');
  if (index.booleanAttribute(module, 'ceil_mode') === true) problems.push('ceil_mode is True');
  if (stride !== undefined && convStride !== undefined && stride !== convStride) problems.push(`its stride ${stride} differs from the conv's ${convStride}`);
  if (problems.length > 0) {
    warnings.push(`${module}: an AvgPool2d that one conv cannot express: ${problems.join('; ')}`);
    return { role: 'avgPool', module, withoutBn: true, presence: 'module' };
  }
  return { role: 'avgPool', module, withoutBn: true, presence: 'module', poolKernel: kernel };
}

function detectBlock(index: ModuleIndex, path: string, { family, assumed }: Assignment): RawBlock {
  const at = (suffix: string) => joinPath(path, suffix);
  const tensors: string[] = [];
  const warnings: string[] = [];
  const branches: Branch[] = [];
  const undecided: UndecidedBranch[] = [];
  const absent: AbsentBranch[] = [];

  const numbered = family.dense.conv.includes('{i}');
  for (let i = 0; ; i++) {
    const conv = at(family.dense.conv.replace('{i}', String(i)));
    const bn = at(family.dense.bn.replace('{i}', String(i)));
    const branch = convBranch(index, 'dense', conv, bn, family, tensors, warnings);
    if (branch) branches.push(branch);
    if (!numbered || !branch) break;
  }
  const oneByOneBn = family.oneByOne.bn === undefined ? undefined : at(family.oneByOne.bn);
  const oneByOne = convBranch(index, 'oneByOne', at(family.oneByOne.conv), oneByOneBn, family, tensors, warnings);
  if (oneByOne) branches.push(oneByOne);

  // A pickled module tree shows modules without tensors (nn.Identity, AvgPool2d), and None where there is none.
  const tree = index.className(path) !== undefined;
  const trainForm = branches.length > 0;
  const identityPath = at(family.identity);
  if (family.identityWithoutBn && !index.has(identityPath)) {
    // A deploy block has no branches to tell about.
    if (trainForm && !tree) undecided.push({ role: 'identity', module: identityPath });
    else if (trainForm && index.className(identityPath) !== undefined)
      branches.push({ role: 'identity', module: identityPath, withoutBn: true, presence: 'module' });
    else if (trainForm) absent.push({ role: 'identity', reason: `${family.identity} is None in the pickled module (in ≠ out or stride ≠ 1)` });
  } else {
    const identityBn = bnNames(index, identityPath, family, tensors, warnings);
    // An incomplete identity BN stays a branch without BN names, so fusion refuses the block instead of dropping it.
    if (identityBn || index.has(identityPath)) branches.push({ role: 'identity', module: identityPath, bn: identityBn });
  }
  if (trainForm && family.avgPool) {
    const pool = at(family.avgPool);
    if (!tree) undecided.push({ role: 'avgPool', module: pool });
    else if (index.className(pool) !== undefined) branches.push(avgPoolBranch(index, pool, at(family.dense.conv.replace('{i}', '0')), warnings));
    else absent.push({ role: 'avgPool', reason: `${family.avgPool} is None in the pickled module (in ≠ out or stride ≠ 1)` });
  } else if (trainForm && family.id === QAREPVGG_V1) {
    absent.push({
      role: 'avgPool',
      reason: assumed
        ? "assumed QARepVGGBlock, which has none: a state dict cannot show QARepVGGBlockV2's tensorless AvgPool branch (rbr_avg); say v2 if the model uses QARepVGGBlockV2"
        : 'QARepVGGBlock has none (only QARepVGGBlockV2 has rbr_avg)',
    });
  }
  if (trainForm && !branches.some((b) => b.role === 'dense')) warnings.push(`no ${family.dense.conv.replace('{i}', '0')} weight: the k×k branch is missing`);

  let postBn: BnNames | undefined;
  if (family.postBn) {
    postBn = bnNames(index, at(family.postBn.module), family, tensors, warnings);
    if (!postBn && !warnings.some((w) => w.startsWith(`${at(family.postBn!.module)}:`)))
      warnings.push(`no BatchNorm after the sum of the branches at ${at(family.postBn.module)}`);
  }

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
  return { name: path, family, branches, deploy, se, postBn, undecided, absent, assumed: trainForm ? assumed : undefined, tensors, warnings };
}

/** One path segment against another as a model's modules are numbered: digit runs by value ('stages.2' before 'stages.10'), a stem first. */
function compareSegments(a: string, b: string): number {
  const stem = (s: string) => (/^stem(_|$)/i.test(s) ? 0 : 1);
  if (stem(a) !== stem(b)) return stem(a) - stem(b);
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const [x, y] = [pa[i], pb[i]];
    const numeric = /^\d/.test(x) && /^\d/.test(y);
    const d = numeric ? Number(x) - Number(y) : x < y ? -1 : x > y ? 1 : 0;
    if (d !== 0) return d;
  }
  return pa.length - pb.length;
}

/** Model order of two block paths by their names alone. */
export function compareModulePaths(a: string, b: string): number {
  const sa = a.split('.');
  const sb = b.split('.');
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    const d = compareSegments(sa[i], sb[i]);
    if (d !== 0) return d;
  }
  return sa.length - sb.length;
}

/** Every re-parameterizable block in the file, in the order their tensors appear (or in name order, see DetectOptions.orderByName). */
export function detectBlocks(index: ModuleIndex, options: DetectOptions = {}): RawBlock[] {
  const order = new Map(index.tensors.map((t, i) => [t.name, i]));
  const blocks = [...assignFamilies(index, options)].map(([path, assignment]) => detectBlock(index, path, assignment));
  if (options.orderByName) return blocks.sort((a, b) => compareModulePaths(a.name, b.name));
  const firstTensor = (b: RawBlock) => Math.min(...b.tensors.map((n) => order.get(n) ?? Infinity));
  return blocks.sort((a, b) => firstTensor(a) - firstTensor(b));
}
