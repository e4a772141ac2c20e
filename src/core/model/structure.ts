import type { ModelFormat } from '../formats/modelFile';
import type { FamilyId } from './families';

export type BranchRole = 'dense' | 'oneByOne' | 'identity' | 'avgPool';
export type BlockForm = 'train' | 'deploy';

/** How a value that a state dict does not store was obtained; anything but 'attribute' is inferred. */
export type ValueSource = 'attribute' | 'identity-rule' | 'stage-convention' | 'identity-bn' | 'chain' | 'default' | 'unknown';

export interface BnNames {
  weight: string;
  bias: string;
  mean: string;
  var: string;
  eps: number;
  epsSource: 'attribute' | 'family-default';
}

export interface Branch {
  role: BranchRole;
  /**
   * Module path of the branch (conv path for conv branches, BN path for the identity); in an ONNX
   * graph whose names say nothing, the node name, and for an identity without BN the input tensor.
   */
  module: string;
  /** Conv weight tensor name; absent for the identity branch. */
  convWeight?: string;
  convBias?: string;
  /** Conv weight shape [out, in/groups, kh, kw]. */
  weightShape?: readonly number[];
  bn?: BnNames;
  /**
   * The branch has no BatchNorm by construction and is summed as it is: an ONNX conv whose BN the
   * exporter folded into its weight and bias, or an input added unchanged (a bare identity).
   * Without this flag a missing BN is an error, never an implicit identity.
   */
  withoutBn?: true;
  /**
   * avgPool only: the k×k window of a parallel AvgPool2d (QARepVGGBlockV2's `rbr_avg`: stride of the
   * block, padding k//2, zero padding counted), which is a conv with 1/k² on channel c mod (in/groups).
   */
  poolKernel?: number;
  /**
   * For a branch without tensors (a bare identity, an AvgPool): how its presence is known. 'module':
   * the pickled module tree has it; 'inferred': a state dict cannot show it, so the family's own
   * rule (in == out, which in its models means stride 1) put it there.
   */
  presence?: 'module' | 'inferred';
}

/** A branch the block's family can have that this block does not, and why (shown by inspect and the tree). */
export interface AbsentBranch {
  role: BranchRole;
  reason: string;
}

/** Where a block sits in the ONNX graph it was found in. */
export interface OnnxBlockSite {
  /** The tensor every branch reads. */
  input: string;
  /** The block's result: the sum of its branches (train form) or the conv's output (deploy form). Fusion keeps this name. */
  output: string;
  /** Indices into graph.node of the file the structure was built from (convs, BatchNormalizations, Adds), in graph order. */
  nodes: number[];
  /** Names of those nodes ('' for unnamed ones). */
  nodeNames: string[];
  /** What the family and block name were read from; with 'none' the family is only the pattern RepVGG blocks share. */
  familySource: 'initializer-names' | 'node-names' | 'none';
  /** False when the branches disagree in a way one conv cannot express exactly (the reasons are in the block's warnings). */
  fusible: boolean;
}

export interface Block {
  /** Module path, e.g. 'stage2.0'. */
  name: string;
  family: FamilyId;
  stage: string;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number | null;
  strideSource: ValueSource;
  padding: number;
  paddingSource: ValueSource;
  groups: number;
  groupsSource: ValueSource;
  dilation: number;
  /** In the family's order: dense branch(es), 1×1, identity. */
  branches: Branch[];
  deploy?: { weight: string; bias?: string; weightShape: readonly number[] };
  se?: { down: string; downBias?: string; up: string; upBias?: string };
  /**
   * A BatchNorm applied to the sum of the branches (QARepVGG's `bn`), folded after the branches are
   * summed. Families whose deploy module keeps it (YOLOv6) keep it in a deploy checkpoint too.
   */
  postBn?: BnNames;
  /**
   * Branches without tensors that this block lacks, each with the reason (set for families whose
   * identity or AvgPool branch has no tensors, where absence is otherwise invisible).
   */
  absent?: AbsentBranch[];
  form: BlockForm;
  params: { train: number; deploy: number };
  /** Every tensor this block owns, in file order. */
  tensors: string[];
  warnings: string[];
  /** Present for blocks found in an ONNX graph. */
  onnx?: OnnxBlockSite;
}

export interface Stage {
  name: string;
  blocks: Block[];
}

export interface StructureWarning {
  block?: string;
  message: string;
}

export interface ModelStructure {
  format: ModelFormat;
  family: FamilyId | 'unknown';
  architecture: string;
  form: BlockForm | 'mixed' | 'none';
  stages: Stage[];
  /** Tensors outside any block (stem, head, neck, ...), in file order. */
  other: string[];
  params: { total: number; afterFusion: number };
  warnings: StructureWarning[];
}

export function allBlocks(structure: ModelStructure): Block[] {
  return structure.stages.flatMap((s) => s.blocks);
}
