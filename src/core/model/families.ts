/**
 * How each re-parameterizable block family names its modules in a state dict.
 * Detection, fusion and the writers all read these tables, so adding a family
 * is adding a row.
 */
export type FamilyId =
  | 'repvgg'
  | 'yolov6-repvgg'
  | 'yolov6-qarepvgg'
  | 'yolov6-qarepvgg-v2'
  | 'yolov7-repconv'
  | 'timm-repvgg'
  | 'timm-mobileone'
  | 'mobileone'
  | 'mmpretrain-repvgg';

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
  /** The 1×1 branch; without `bn` it is a bare conv, summed as it is (QARepVGG's `rbr_1x1`). */
  oneByOne: { conv: string; bn?: string };
  /** The identity branch: a BatchNorm, or with `identityWithoutBn` a module without tensors (nn.Identity). */
  identity: string;
  /**
   * The identity is the input added unchanged (QARepVGG's `rbr_identity = nn.Identity()`). Having no
   * tensors, it shows only in a pickled module's tree; in a state dict its presence is inferred
   * from the channels (in == out), as the family's constructor decides it.
   */
  identityWithoutBn?: true;
  /**
   * A parallel AvgPool2d branch without tensors (QARepVGGBlockV2's `rbr_avg`: kernel k, the block's
   * stride, padding k//2, zero padding counted), present where the identity is.
   */
  avgPool?: string;
  /**
   * A BatchNorm applied to the sum of the branches (QARepVGG's `bn`). `keptInDeploy`: the family's
   * own deploy module keeps it after its re-parameterization (YOLOv6: "keep post bn for QAT"), so a
   * deploy checkpoint holds the pre-BN conv and this BN unchanged.
   */
  postBn?: { module: string; keptInDeploy: boolean };
  /**
   * The Python class of the family's block in a pickled module ('timm.models.byobnet.MobileOneBlock'),
   * which tells apart families whose tensor names are the same.
   */
  className?: RegExp;
  /** The single conv (with bias) of the deploy form. */
  deploy: string;
  /** Squeeze-excitation convs inside the block, if the family has them. */
  se?: { down: string; up: string };
  /** BN eps used when the file does not store it (state dicts never do). */
  defaultEps: number;
  activation: Activation;
  /** Whether the family's own models put stride 2 at each stage's first block. */
  stageConvention: boolean;
  /**
   * Block paths the family's own models give stride 2 (YOLOv6: the stem and the first block of each
   * ERBlock stage); in a model named so, every other block of the family has stride 1.
   */
  downsampleNames?: RegExp;
  /**
   * The family's models never group their blocks' convs (YOLOv6 builds every block with groups=1),
   * so groups are not inferred from the previous block: in a detector, layers without tensors of
   * interest (concats, upsamples) sit between blocks that the file lists one after the other.
   */
  ungrouped?: true;
  /** Names elsewhere in the model that tell this family from one with the same block names. */
  modelHint?: RegExp;
  /**
   * What in the model's tensors makes this family the first choice among those with the same block names,
   * without ruling it out where it is absent (a deploy-form RepConv has RepVGG's names).
   */
  preferredBy?: (tensors: readonly { name: string; shape: readonly number[] }[]) => boolean;
  /** Module names of the family's classifier (GAP → Linear) after the last block, for the parity graph. */
  classifier?: readonly string[];
}

/** YOLOv6's QARepVGGBlock (v1); v2 has the same tensors plus a tensorless AvgPool branch. */
const YOLOV6_QAREPVGG: FamilyLayout = {
  // Told from RepVGGBlock by the bare 1×1 conv and the BN after the sum (detectBlocks: QAREPVGG_SIGNATURE).
  id: 'yolov6-qarepvgg',
  label: 'YOLOv6 QARepVGGBlock',
  dense: { conv: 'rbr_dense.conv', bn: 'rbr_dense.bn' },
  oneByOne: { conv: 'rbr_1x1' },
  identity: 'rbr_identity',
  identityWithoutBn: true,
  deploy: 'rbr_reparam',
  postBn: { module: 'bn', keptInDeploy: true },
  // YOLOv6's initialize_weights sets every BatchNorm's eps to 1e-3.
  defaultEps: 1e-3,
  activation: 'relu',
  stageConvention: false,
  downsampleNames: /(^|\.)(stem|ERBlock_\d+\.0)$/,
  ungrouped: true,
  className: /(^|\.)QARepVGGBlock$/,
};

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
    downsampleNames: /(^|\.)(stem|ERBlock_\d+\.0)$/,
    ungrouped: true,
    modelHint: /(^|\.)(ERBlock_\d|Rep_p\d|Rep_n\d)(\.|$)/,
    className: /(^|\.)yolov6\.layers\.common\.RepVGGBlock$/,
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
  YOLOV6_QAREPVGG,
  {
    // The same tensors as QARepVGGBlock; only a pickled module (or the caller) tells them apart.
    ...YOLOV6_QAREPVGG,
    id: 'yolov6-qarepvgg-v2',
    label: 'YOLOv6 QARepVGGBlockV2',
    avgPool: 'rbr_avg',
    className: /(^|\.)QARepVGGBlockV2$/,
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
    // A deploy-form RepConv has RepVGG's tensor names; a pickled model still says its class, a state dict its
    // (I)Detect head's anchors and implicit layers.
    className: /(^|\.)RepConv$/,
    preferredBy: (tensors) => tensors.some((t) => /^model\.\d+\.(anchor_grid|ia\.\d+\.implicit|im\.\d+\.implicit)$/.test(t.name)),
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
    se: { down: 'attn.fc1', up: 'attn.fc2' },
    classifier: ['head.fc'],
    modelHint: /(^|\.)stages\.\d+\.\d+\./,
    className: /(^|\.)byobnet\.RepVggBlock$/,
  },
  {
    // timm byobnet's MobileOneBlock: numbered k×k branches, a 1×1 "scale" branch (absent in k = 1
    // blocks), a BatchNormAct2d identity and timm's SEModule as `attn`.
    id: 'timm-mobileone',
    label: 'timm MobileOne',
    dense: { conv: 'conv_kxk.{i}.conv', bn: 'conv_kxk.{i}.bn' },
    oneByOne: { conv: 'conv_scale.conv', bn: 'conv_scale.bn' },
    identity: 'identity',
    deploy: 'reparam_conv',
    se: { down: 'attn.fc1', up: 'attn.fc2' },
    defaultEps: 1e-5,
    activation: 'relu',
    stageConvention: true,
    classifier: ['head.fc'],
    className: /(^|\.)byobnet\.MobileOneBlock$/,
    // In deploy form timm's RepVggBlock and MobileOneBlock are both one `reparam_conv`; only MobileOne has 1×1 (pointwise) blocks.
    preferredBy: (tensors) => tensors.some((t) => /(^|\.)stages\.\d+\.\d+\.reparam_conv\.weight$/.test(t.name) && t.shape[2] === 1),
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
    className: /(^|\.)MobileOneBlock$/,
    // In deploy form its blocks are named as timm's (`reparam_conv`); its stages are stage0…stage4, timm's stages.N.
    preferredBy: (tensors) => tensors.some((t) => /(^|\.)stage\d\./.test(t.name)),
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
