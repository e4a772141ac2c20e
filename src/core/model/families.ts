/**
 * How each re-parameterizable block family names its modules in a state dict.
 * Detection, fusion and the writers all read these tables, so adding a family
 * is adding a row.
 */
export type FamilyId = 'repvgg' | 'yolov6-repvgg' | 'yolov7-repconv' | 'timm-repvgg' | 'mobileone' | 'mmpretrain-repvgg';

export type Activation = 'relu' | 'silu';

export interface ConvBnNames {
  conv: string;
  bn: string;
}

export interface FamilyLayout {
  id: FamilyId;
  label: string;
  /** The k×k conv+BN branch; `{i}` marks MobileOne's numbered over-parameterized branches. */
  dense: ConvBnNames;
  oneByOne: ConvBnNames;
  /** The BN-only identity branch. */
  identity: string;
  /** The single conv (with bias) of the deploy form. */
  deploy: string;
  /** Squeeze-excitation convs inside the block, if the family has them. */
  se?: { down: string; up: string };
  /** BN eps used when the file does not store it (state dicts never do). */
  defaultEps: number;
  activation: Activation;
  /** Whether the family's own models put stride 2 at each stage's first block. */
  stageConvention: boolean;
  /** Names elsewhere in the model that tell this family from one with the same block names. */
  modelHint?: RegExp;
  /** Module names of the family's classifier (GAP → Linear) after the last block, for the parity graph. */
  classifier?: readonly string[];
}

export const FAMILIES: readonly FamilyLayout[] = [
  {
    id: 'yolov6-repvgg',
    label: 'YOLOv6 RepVGGBlock',
    dense: { conv: 'rbr_dense.conv', bn: 'rbr_dense.bn' },
    oneByOne: { conv: 'rbr_1x1.conv', bn: 'rbr_1x1.bn' },
    identity: 'rbr_identity',
    deploy: 'rbr_reparam',
    se: { down: 'se.down', up: 'se.up' },
    defaultEps: 1e-3,
    activation: 'relu',
    stageConvention: false,
    modelHint: /(^|\.)(ERBlock_\d|Rep_p\d|Rep_n\d)(\.|$)/,
  },
  {
    id: 'repvgg',
    label: 'RepVGG',
    dense: { conv: 'rbr_dense.conv', bn: 'rbr_dense.bn' },
    oneByOne: { conv: 'rbr_1x1.conv', bn: 'rbr_1x1.bn' },
    identity: 'rbr_identity',
    deploy: 'rbr_reparam',
    se: { down: 'se.down', up: 'se.up' },
    defaultEps: 1e-5,
    activation: 'relu',
    stageConvention: true,
    classifier: ['linear'],
  },
  {
    id: 'yolov7-repconv',
    label: 'YOLOv7 RepConv',
    dense: { conv: 'rbr_dense.0', bn: 'rbr_dense.1' },
    oneByOne: { conv: 'rbr_1x1.0', bn: 'rbr_1x1.1' },
    identity: 'rbr_identity',
    deploy: 'rbr_reparam',
    defaultEps: 1e-3,
    activation: 'silu',
    stageConvention: false,
  },
  {
    id: 'timm-repvgg',
    label: 'timm RepVGG',
    dense: { conv: 'conv_kxk.conv', bn: 'conv_kxk.bn' },
    oneByOne: { conv: 'conv_1x1.conv', bn: 'conv_1x1.bn' },
    identity: 'identity',
    deploy: 'reparam_conv',
    defaultEps: 1e-5,
    activation: 'relu',
    stageConvention: true,
    classifier: ['head.fc'],
    modelHint: /(^|\.)stages\.\d+\.\d+\./,
  },
  {
    id: 'mobileone',
    label: 'MobileOne',
    dense: { conv: 'rbr_conv.{i}.conv', bn: 'rbr_conv.{i}.bn' },
    oneByOne: { conv: 'rbr_scale.conv', bn: 'rbr_scale.bn' },
    identity: 'rbr_skip',
    deploy: 'reparam_conv',
    se: { down: 'se.reduce', up: 'se.expand' },
    defaultEps: 1e-5,
    activation: 'relu',
    stageConvention: true,
    classifier: ['linear'],
  },
  {
    id: 'mmpretrain-repvgg',
    label: 'mmpretrain RepVGG',
    dense: { conv: 'branch_3x3.conv', bn: 'branch_3x3.norm' },
    oneByOne: { conv: 'branch_1x1.conv', bn: 'branch_1x1.norm' },
    identity: 'branch_norm',
    deploy: 'branch_reparam',
    se: { down: 'se_layer.conv1.conv', up: 'se_layer.conv2.conv' },
    defaultEps: 1e-5,
    activation: 'relu',
    stageConvention: true,
    classifier: ['head.fc'],
  },
];

export function familyById(id: FamilyId): FamilyLayout {
  const family = FAMILIES.find((f) => f.id === id);
  if (!family) throw new Error(`unknown family ${id}`);
  return family;
}
