import type { ModelFormat } from '../formats/modelFile';
import type { FamilyId } from './families';

export type BranchRole = 'dense' | 'oneByOne' | 'identity';
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
  /** Module path of the branch (conv path for conv branches, BN path for the identity). */
  module: string;
  /** Conv weight tensor name; absent for the identity branch. */
  convWeight?: string;
  convBias?: string;
  /** Conv weight shape [out, in/groups, kh, kw]. */
  weightShape?: readonly number[];
  bn?: BnNames;
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
  form: BlockForm;
  params: { train: number; deploy: number };
  /** Every tensor this block owns, in file order. */
  tensors: string[];
  warnings: string[];
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
