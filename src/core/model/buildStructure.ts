import type { ModelFile } from '../formats/modelFile';
import { numelOf } from '../formats/tensor';
import { recogniseArchitecture } from './architectures';
import { detectBlocks, type DetectOptions, type RawBlock } from './detectBlocks';
import { ModuleIndex, type TensorMeta } from './moduleIndex';
import { sourceNote } from './describe';
import { detectOnnxBlocks } from './onnxStructure';
import type { AbsentBranch, Block, BlockForm, Branch, ModelStructure, Stage, StructureWarning, ValueSource } from './structure';

/** What the caller knows about the model that its file cannot say. */
export type StructureOptions = Pick<DetectOptions, 'qarepvgg'>;

/** Stage of a block: the container it is numbered in ('stage1.0' → 'stage1'), or itself when it stands alone ('stage0'). */
function stageOf(blockName: string): { stage: string; position: number | null } {
  const dot = blockName.lastIndexOf('.');
  const last = blockName.slice(dot + 1);
  if (/^\d+$/.test(last)) return { stage: dot < 0 ? '(root)' : blockName.slice(0, dot), position: Number(last) };
  return { stage: blockName === '' ? '(root)' : blockName, position: null };
}

function numel(index: Map<string, TensorMeta>, names: (string | undefined)[]): number {
  let n = 0;
  for (const name of names) if (name) n += numelOf(index.get(name)!.shape, name);
  return n;
}

type Sourced<T> = [T, ValueSource];

/** Groups: as the file's conv says, else from the identity BN's width, else from the previous block's output channels. */
function groupsOf(
  raw: RawBlock,
  groupsAttr: number | undefined,
  identityChannels: number | undefined,
  inPerGroup: number,
  previousOut: number | undefined,
): Sourced<number> {
  if (groupsAttr !== undefined) return [groupsAttr, 'attribute'];
  if (identityChannels !== undefined) return [identityChannels / inPerGroup, 'identity-bn'];
  if (!raw.family.ungrouped && previousOut !== undefined && previousOut !== inPerGroup && previousOut % inPerGroup === 0)
    return [previousOut / inPerGroup, 'chain'];
  return [1, 'default'];
}

/** Stride as far as the file says it: the conv's attribute, an identity BN (only at stride 1), or names that mark downsampling blocks. */
function strideFromFile(raw: RawBlock, strideAttr: number | undefined, hasIdentityBn: boolean, namedByConvention: boolean): Sourced<number | null> {
  if (strideAttr !== undefined) return [strideAttr, 'attribute'];
  if (hasIdentityBn) return [1, 'identity-rule'];
  if (namedByConvention && raw.family.downsampleNames) return [raw.family.downsampleNames.test(raw.name) ? 2 : 1, 'stage-convention'];
  return [null, 'unknown'];
}

/** Stride still unknown: 1 with an identity, else the stage convention where the family has one (2 at a stage's first block). */
function strideByConvention(raw: RawBlock, hasIdentity: boolean, position: number | null, inChannels: number, outChannels: number): Sourced<number | null> {
  if (hasIdentity) return [1, 'identity-rule'];
  if (raw.family.stageConvention) {
    if (position === null || position === 0) return [2, 'stage-convention'];
    if (inChannels !== outChannels) return [1, 'stage-convention'];
    // in == out mid-stage without an identity contradicts the convention: leave stride unknown.
  }
  return [null, 'unknown'];
}

/**
 * Branches without tensors that a state dict cannot show are there where the family's constructor puts them: in == out
 * at stride 1. A stride the file does not say is taken as 1: outside names that say otherwise (downsampleNames), the
 * family's models do not have in == out at stride 2.
 */
function placeUndecided(
  raw: RawBlock,
  branches: Branch[],
  absent: AbsentBranch[],
  inChannels: number,
  outChannels: number,
  [stride, strideSource]: Sourced<number | null>,
  kernel: number,
): void {
  for (const u of raw.undecided) {
    if (inChannels === outChannels && (stride === null || stride === 1)) {
      branches.push({
        role: u.role,
        module: u.module,
        withoutBn: true,
        presence: 'inferred',
        ...(u.role === 'avgPool' ? { poolKernel: u.poolKernel ?? kernel } : {}),
      });
    } else {
      absent.push({ role: u.role, reason: inChannels !== outChannels ? 'in_channels ≠ out_channels' : `stride ${stride} (${sourceNote(strideSource)})` });
    }
  }
}

/** What does not add up in a block: branches that cannot be summed, a missing identity, shapes that disagree. */
function consistencyWarnings(
  raw: RawBlock,
  branches: readonly Branch[],
  convs: readonly Branch[],
  c: { inChannels: number; outChannels: number; inPerGroup: number; stride: number | null; position: number | null },
): string[] {
  const warnings: string[] = [];
  const { inChannels, outChannels, inPerGroup, stride, position } = c;
  const identity = branches.some((b) => b.role === 'identity');
  if (identity && inChannels !== outChannels) {
    warnings.push(`identity branch present but in_channels (${inChannels}) ≠ out_channels (${outChannels}): the identity cannot be added`);
  }
  if (branches.some((b) => b.role === 'avgPool') && inChannels !== outChannels) {
    warnings.push(`AvgPool branch present but in_channels (${inChannels}) ≠ out_channels (${outChannels}): it cannot be added`);
  }
  if (
    !identity &&
    !raw.deploy &&
    inChannels === outChannels &&
    (stride === 1 || (stride === null && raw.family.stageConvention && position !== null && position > 0))
  ) {
    warnings.push(
      `in_channels == out_channels (${inChannels}) and ${stride === 1 ? 'stride is 1' : 'not the first block of its stage'}, but there is no identity branch`,
    );
  }
  for (const b of convs) {
    const [o, i, kh, kw] = b.weightShape!;
    if (o !== outChannels || i !== inPerGroup)
      warnings.push(`${b.module}: weight shape [${b.weightShape!.join(', ')}] does not match the block's ${outChannels}×${inPerGroup}`);
    if (kh !== kw || kh % 2 === 0) warnings.push(`${b.module}: kernel ${kh}×${kw} is not square and odd`);
  }
  if (raw.deploy && raw.branches.length > 0) warnings.push('has both train-form branches and a fused deploy conv');
  return warnings;
}

/** Parameters of the block as the file holds it, and of its deploy form (one k×k conv with bias, plus what the deploy module keeps). */
function paramCounts(
  raw: RawBlock,
  tensors: Map<string, TensorMeta>,
  form: BlockForm,
  outChannels: number,
  inPerGroup: number,
  kernel: number,
): Block['params'] {
  const seTensors = raw.se ? [raw.se.down, raw.se.downBias, raw.se.up, raw.se.upBias] : [];
  const postBnParams = raw.postBn ? [raw.postBn.weight, raw.postBn.bias] : [];
  const train = numel(tensors, [
    ...raw.branches.flatMap((b) => [b.convWeight, b.convBias, b.bn?.weight, b.bn?.bias]),
    ...(form === 'deploy' ? [raw.deploy?.weight, raw.deploy?.bias] : []),
    ...seTensors,
    ...postBnParams,
  ]);
  // A family whose deploy module keeps the post-sum BN (YOLOv6) keeps its γ and β in the deploy checkpoint.
  const keptPostBn = raw.family.postBn?.keptInDeploy ? postBnParams : [];
  return { train, deploy: outChannels * inPerGroup * kernel * kernel + outChannels + numel(tensors, [...seTensors, ...keptPostBn]) };
}

/** Applies what the tensors alone cannot say: channels, groups and stride, each with where it came from. */
function resolveBlock(
  raw: RawBlock,
  modules: ModuleIndex,
  tensors: Map<string, TensorMeta>,
  previousOut: number | undefined,
  namedByConvention: boolean,
): Block {
  const branches: Branch[] = [...raw.branches];
  const absent: AbsentBranch[] = [...raw.absent];
  const convs = branches.filter((b) => b.weightShape);
  const main = raw.deploy?.weightShape ?? convs.find((b) => b.role === 'dense')?.weightShape ?? convs[0]?.weightShape;
  const identityBn = branches.find((b) => b.role === 'identity' && b.bn);
  const convModule = raw.deploy ? raw.deploy.weight.replace(/\.weight$/, '') : convs[0]?.module;
  const attr = (name: string) => (convModule === undefined ? undefined : modules.numberAttribute(convModule, name));
  const { stage, position } = stageOf(raw.name);

  // An identity whose BN is incomplete has no size to offer (fusion refuses such a block).
  const identityChannels = identityBn ? tensors.get(identityBn.bn!.weight)!.shape[0] : undefined;
  const outChannels = main?.[0] ?? identityChannels ?? 0;
  const inPerGroup = main?.[1] ?? outChannels;
  const kernel = convs.reduce((k, b) => Math.max(k, b.weightShape![2]), Math.max(raw.deploy?.weightShape[2] ?? 0, 1));
  const [groups, groupsSource] = groupsOf(raw, attr('groups'), identityChannels, inPerGroup, previousOut);
  const inChannels = attr('in_channels') ?? inPerGroup * groups;

  let strideFound = strideFromFile(raw, attr('stride'), identityBn !== undefined, namedByConvention);
  placeUndecided(raw, branches, absent, inChannels, outChannels, strideFound, kernel);
  if (strideFound[0] === null) {
    const convention = strideByConvention(
      raw,
      branches.some((b) => b.role === 'identity'),
      position,
      inChannels,
      outChannels,
    );
    if (convention[0] !== null) strideFound = convention;
  }
  const [stride, strideSource] = strideFound;

  const paddingAttr = attr('padding');
  const form: BlockForm = raw.branches.length > 0 ? 'train' : 'deploy';
  return {
    name: raw.name,
    family: raw.family.id,
    stage,
    inChannels,
    outChannels,
    kernel,
    stride,
    strideSource,
    padding: paddingAttr ?? Math.floor(kernel / 2),
    paddingSource: paddingAttr === undefined ? 'default' : 'attribute',
    groups,
    groupsSource,
    dilation: attr('dilation') ?? 1,
    branches,
    deploy: raw.deploy,
    se: raw.se,
    ...(raw.postBn ? { postBn: raw.postBn } : {}),
    ...(absent.length > 0 ? { absent } : {}),
    form,
    params: paramCounts(raw, tensors, form, outChannels, inPerGroup, kernel),
    tensors: raw.tensors,
    warnings: [...raw.warnings, ...consistencyWarnings(raw, branches, convs, { inChannels, outChannels, inPerGroup, stride, position })],
  };
}

export function buildStructureFromTensors(
  format: ModelFile['format'],
  tensorList: readonly TensorMeta[],
  modules: ModelFile['modules'] = [],
  options: StructureOptions = {},
): ModelStructure {
  const index = new ModuleIndex(tensorList, modules);
  const tensors = new Map(tensorList.map((t) => [t.name, t]));
  const blocks: Block[] = [];
  const raws = detectBlocks(index, { ...options, orderByName: format === 'safetensors' });
  // A family's naming convention for strides holds only in a model named the family's way.
  const named = new Set(raws.filter((r) => r.family.downsampleNames?.test(r.name)).map((r) => r.family.id));
  for (const raw of raws) blocks.push(resolveBlock(raw, index, tensors, blocks.at(-1)?.outChannels, named.has(raw.family.id)));
  // An assumption that holds for every such block is said once, for the model.
  const assumptions = [...new Set(raws.flatMap((r) => (r.assumed ? [r.assumed] : [])))];
  return assembleStructure(
    format,
    blocks,
    tensorList,
    assumptions.map((message) => ({ message })),
  );
}

/** Stages, model-level family, form, parameter counts and warnings around blocks given in model order. */
function assembleStructure(
  format: ModelFile['format'],
  blocks: readonly Block[],
  tensorList: readonly TensorMeta[],
  modelWarnings: StructureWarning[] = [],
): ModelStructure {
  const tensors = new Map(tensorList.map((t) => [t.name, t]));
  const stages: Stage[] = [];
  for (const block of blocks) {
    const last = stages.at(-1);
    if (last?.name === block.stage) last.blocks.push(block);
    else stages.push({ name: block.stage, blocks: [block] });
  }

  const owned = new Set(blocks.flatMap((b) => b.tensors));
  const other = tensorList.filter((t) => !owned.has(t.name)).map((t) => t.name);
  // An ONNX block found by its shape alone carries the generic family; it says nothing about the model's.
  const families = [...new Set(blocks.filter((b) => b.onnx?.familySource !== 'none').map((b) => b.family))];
  const forms = new Set(blocks.map((b) => b.form));
  const warnings: StructureWarning[] = blocks.flatMap((b) => b.warnings.map((message) => ({ block: b.name, message })));
  if (families.length > 1) warnings.push({ message: `blocks of several families: ${families.join(', ')}` });
  warnings.push(...modelWarnings);

  const otherParams = numel(
    tensors,
    other.filter((n) => !/(running_mean|running_var|num_batches_tracked)$/.test(n)),
  );
  const sum = (f: (b: Block) => number) => blocks.reduce((s, b) => s + f(b), 0);
  return {
    format,
    family: families.length === 1 ? families[0] : 'unknown',
    architecture: recogniseArchitecture(
      blocks.map((b) => ({
        stage: stages.findIndex((s) => s.name === b.stage),
        outChannels: b.outChannels,
        inPerGroup: b.inChannels / b.groups,
        se: b.se !== undefined,
      })),
    ),
    form: forms.size === 0 ? 'none' : forms.size === 1 ? [...forms][0] : 'mixed',
    stages,
    other,
    params: { total: otherParams + sum((b) => b.params.train), afterFusion: otherParams + sum((b) => b.params.deploy) },
    warnings,
  };
}

/** ONNX models are read from their graph (blocks are found by shape, names only label them); checkpoints from their tensor names. */
export function buildStructure(file: ModelFile, options: StructureOptions = {}): ModelStructure {
  if (file.onnx?.graph) {
    const blocks = detectOnnxBlocks(file.onnx.graph, file.tensors).map((b): Block => ({ ...b, stage: stageOf(b.name).stage }));
    return assembleStructure(file.format, blocks, file.tensors);
  }
  return buildStructureFromTensors(file.format, file.tensors, file.modules, options);
}
