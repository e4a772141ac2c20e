import { encodeFromFloat64 } from '../../../src/core/formats/encode';
import type { ModelFile, ModuleInfo } from '../../../src/core/formats/modelFile';
import { Tensor, type DType } from '../../../src/core/formats/tensor';
import { writeAtomically } from '../../../src/core/writers/atomicFile';
import { writeTorchCheckpoint } from '../../../src/core/writers/torchWriter';
import { writeModuleCheckpoint, type PyModule } from './modulePickle';

/*
 * Small models of the families RepLens learnt last (YOLOv6 QARepVGGBlock/V2, YOLOv6 RepVGGBlock,
 * timm MobileOne), built here the way their constructors lay them out: every tensor with its
 * values, and the pickled module tree (class names, attributes, tensorless children such as
 * nn.Identity and AvgPool2d, None where the constructor puts None) that torch.save(model) would hold.
 */

export interface SynthTensor {
  name: string;
  shape: number[];
  dtype: DType;
  values: Float64Array;
}

export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Collects tensors in state-dict order, with values that make every branch matter. */
export class Synth {
  readonly tensors: SynthTensor[] = [];
  private readonly rand: () => number;

  constructor(seed: number) {
    this.rand = seededRandom(seed);
  }

  private add(name: string, shape: number[], values: Float64Array, dtype: DType = 'float32'): SynthTensor {
    const t = { name, shape, dtype, values };
    this.tensors.push(t);
    return t;
  }

  uniform(n: number, lo: number, hi: number): Float64Array {
    return Float64Array.from({ length: n }, () => lo + (hi - lo) * this.rand());
  }

  /** A conv weight scaled by 1/√fan-in, so outputs stay near unit size through a stack. */
  conv(name: string, shape: number[]): SynthTensor {
    const fanIn = shape[1] * shape[2] * shape[3];
    return this.add(
      name,
      shape,
      this.uniform(numel(shape), -1.7, 1.7).map((v) => v / Math.sqrt(fanIn)),
    );
  }

  matrix(name: string, shape: [number, number]): SynthTensor {
    return this.add(
      name,
      shape,
      this.uniform(shape[0] * shape[1], -1, 1).map((v) => v / Math.sqrt(shape[1])),
    );
  }

  vector(name: string, n: number, lo: number, hi: number): SynthTensor {
    return this.add(name, [n], this.uniform(n, lo, hi));
  }

  /** A BatchNorm's four tensors and num_batches_tracked (int64, shape []), as a state dict has them. */
  bn(module: string, c: number): SynthTensor[] {
    const out = [
      this.vector(`${module}.weight`, c, 0.5, 1.5),
      this.vector(`${module}.bias`, c, -0.3, 0.3),
      this.vector(`${module}.running_mean`, c, -0.3, 0.3),
      this.vector(`${module}.running_var`, c, 0.5, 2),
    ];
    this.add(`${module}.num_batches_tracked`, [], Float64Array.of(1234), 'int64');
    return out;
  }

  get(name: string): SynthTensor {
    const t = this.tensors.find((x) => x.name === name);
    if (!t) throw new Error(`no tensor ${name}`);
    return t;
  }

  values(name: string): Float64Array {
    return this.get(name).values;
  }
}

function encode(t: Pick<SynthTensor, 'dtype' | 'values'>): Uint8Array {
  if (t.dtype === 'int64') return new Uint8Array(BigInt64Array.from(t.values, (v) => BigInt(v)).buffer);
  return encodeFromFloat64(t.dtype, t.values);
}

export function tensorOf(t: SynthTensor): Tensor {
  return new Tensor(t.name, t.dtype, t.shape, async () => encode(t));
}

/** A ModelFile held in memory, as a reader would return it. */
export function memoryModel(tensors: readonly SynthTensor[], options: { modules?: ModuleInfo[]; format?: ModelFile['format']; path?: string } = {}): ModelFile {
  return {
    path: options.path ?? 'memory.pth',
    format: options.format ?? 'torch-zip',
    tensors: tensors.map(tensorOf),
    metadata: {},
    ...(options.modules ? { modules: options.modules } : {}),
    warnings: [],
    close: async () => undefined,
  };
}

/** A plain state dict, written as torch.save writes one. */
export async function writeStateDict(file: string, tensors: readonly SynthTensor[]): Promise<string> {
  await writeAtomically(
    file,
    (sink) =>
      writeTorchCheckpoint(
        sink,
        tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: async () => encode(t) })),
      ),
    { overwrite: true },
  );
  return file;
}

export { writeModuleCheckpoint };
export type { PyModule };

// ---------------------------------------------------------------------------------------------
// Module trees

const CONV2D = 'torch.nn.modules.conv.Conv2d';
const BN2D = 'torch.nn.modules.batchnorm.BatchNorm2d';

function convModule(s: Synth, path: string, cin: number, cout: number, k: number, stride: number, groups: number, bias = false): PyModule {
  const w = s.get(`${path}.weight`);
  return {
    cls: CONV2D,
    attributes: {
      in_channels: cin,
      out_channels: cout,
      kernel_size: [k, k],
      stride: [stride, stride],
      padding: [Math.floor(k / 2), Math.floor(k / 2)],
      dilation: [1, 1],
      groups,
    },
    params: [['weight', w], ...(bias ? [['bias', s.get(`${path}.bias`)] as [string, SynthTensor]] : [])],
  };
}

function bnModule(s: Synth, path: string, eps: number, cls = BN2D): PyModule {
  return {
    cls,
    attributes: { eps, momentum: 0.1, num_features: s.get(`${path}.weight`).shape[0] },
    params: [
      ['weight', s.get(`${path}.weight`)],
      ['bias', s.get(`${path}.bias`)],
    ],
    buffers: [
      ['running_mean', s.get(`${path}.running_mean`)],
      ['running_var', s.get(`${path}.running_var`)],
      ['num_batches_tracked', s.get(`${path}.num_batches_tracked`)],
    ],
  };
}

export interface BlockSpec {
  name: string;
  cin: number;
  cout: number;
  stride: number;
  groups?: number;
}

/**
 * YOLOv6 QARepVGGBlock / QARepVGGBlockV2 (yolov6/layers/common.py): rbr_dense = ConvModule(conv, bn),
 * rbr_1x1 = bare Conv2d (bias=False), rbr_identity = nn.Identity() where in == out and stride 1 (else
 * None), V2's rbr_avg = AvgPool2d(3, stride, 1) likewise, and bn, the BatchNorm after the sum. Returns
 * the module; the tensors go into `s` in state-dict order (rbr_dense, rbr_1x1, bn).
 */
export function qarepvggBlock(s: Synth, b: BlockSpec, version: 'v1' | 'v2', eps = 1e-3): PyModule {
  const g = b.groups ?? 1;
  const p = b.name;
  s.conv(`${p}.rbr_dense.conv.weight`, [b.cout, b.cin / g, 3, 3]);
  s.bn(`${p}.rbr_dense.bn`, b.cout);
  s.conv(`${p}.rbr_1x1.weight`, [b.cout, b.cin / g, 1, 1]);
  s.bn(`${p}.bn`, b.cout);
  const same = b.cin === b.cout && b.stride === 1;
  return {
    cls: `yolov6.layers.common.${version === 'v2' ? 'QARepVGGBlockV2' : 'QARepVGGBlock'}`,
    attributes: { deploy: false, groups: g, in_channels: b.cin, out_channels: b.cout },
    children: [
      ['nonlinearity', { cls: 'torch.nn.modules.activation.ReLU', attributes: { inplace: false } }],
      ['se', { cls: 'torch.nn.modules.linear.Identity' }],
      ['rbr_identity', same ? { cls: 'torch.nn.modules.linear.Identity' } : null],
      [
        'rbr_dense',
        {
          cls: 'yolov6.layers.common.ConvModule',
          attributes: { activation_type: null },
          children: [
            ['conv', convModule(s, `${p}.rbr_dense.conv`, b.cin, b.cout, 3, b.stride, g)],
            ['bn', bnModule(s, `${p}.rbr_dense.bn`, eps)],
          ],
        },
      ],
      ['rbr_1x1', convModule(s, `${p}.rbr_1x1`, b.cin, b.cout, 1, b.stride, g)],
      ['bn', bnModule(s, `${p}.bn`, eps)],
      ...(version === 'v2'
        ? [
            [
              'rbr_avg',
              same
                ? {
                    cls: 'torch.nn.modules.pooling.AvgPool2d',
                    attributes: { kernel_size: 3, stride: b.stride, padding: 1, ceil_mode: false, count_include_pad: true, divisor_override: null },
                  }
                : null,
            ] as [string, PyModule | null],
          ]
        : []),
    ],
  };
}

/** YOLOv6 RepVGGBlock: ConvModule branches (conv, bn) and a BatchNorm identity where in == out and stride 1. */
export function yolov6RepvggBlock(s: Synth, b: BlockSpec): void {
  const g = b.groups ?? 1;
  const p = b.name;
  if (b.cin === b.cout && b.stride === 1) s.bn(`${p}.rbr_identity`, b.cin);
  s.conv(`${p}.rbr_dense.conv.weight`, [b.cout, b.cin / g, 3, 3]);
  s.bn(`${p}.rbr_dense.bn`, b.cout);
  s.conv(`${p}.rbr_1x1.conv.weight`, [b.cout, b.cin / g, 1, 1]);
  s.bn(`${p}.rbr_1x1.bn`, b.cout);
}

export interface MobileOneSpec extends BlockSpec {
  kernel: number;
  branches: number;
  se?: number;
}

/** mobileone_s0's layout at a tiny width: a stem, then per stage depthwise k×k blocks and pointwise 1×1 blocks, SE in the last stage. */
export const TINY_MOBILEONE: readonly MobileOneSpec[] = [
  { name: 'stem', cin: 3, cout: 8, stride: 2, kernel: 3, branches: 1 },
  { name: 'stages.0.0', cin: 8, cout: 8, stride: 2, groups: 8, kernel: 3, branches: 3 },
  { name: 'stages.0.1', cin: 8, cout: 16, stride: 1, kernel: 1, branches: 3 },
  { name: 'stages.0.2', cin: 16, cout: 16, stride: 1, groups: 16, kernel: 3, branches: 3 },
  { name: 'stages.0.3', cin: 16, cout: 16, stride: 1, kernel: 1, branches: 3 },
  { name: 'stages.1.0', cin: 16, cout: 16, stride: 2, groups: 16, kernel: 3, branches: 2, se: 4 },
  { name: 'stages.1.1', cin: 16, cout: 24, stride: 1, kernel: 1, branches: 2, se: 4 },
];

/**
 * timm byobnet MobileOneBlock: identity (BatchNormAct2d, where in == out and stride 1),
 * conv_kxk.{i} (ConvNormAct: conv, bn), conv_scale (1×1 ConvNormAct, only when kernel > 1),
 * attn (timm's SEModule: fc1, fc2 with biases) when `se` gives its reduced width.
 */
export function timmMobileOneBlock(s: Synth, b: MobileOneSpec): PyModule {
  const g = b.groups ?? 1;
  const p = b.name;
  const children: [string, PyModule | null][] = [];
  const same = b.cin === b.cout && b.stride === 1;
  if (same) {
    s.bn(`${p}.identity`, b.cout);
    children.push(['identity', bnModule(s, `${p}.identity`, 1e-5, 'timm.layers.norm_act.BatchNormAct2d')]);
  } else {
    children.push(['identity', null]);
  }
  const convs: [string, PyModule][] = [];
  for (let i = 0; i < b.branches; i++) {
    s.conv(`${p}.conv_kxk.${i}.conv.weight`, [b.cout, b.cin / g, b.kernel, b.kernel]);
    s.bn(`${p}.conv_kxk.${i}.bn`, b.cout);
    convs.push([
      String(i),
      {
        cls: 'timm.layers.conv_bn_act.ConvNormAct',
        children: [
          ['conv', convModule(s, `${p}.conv_kxk.${i}.conv`, b.cin, b.cout, b.kernel, b.stride, g)],
          ['bn', bnModule(s, `${p}.conv_kxk.${i}.bn`, 1e-5, 'timm.layers.norm_act.BatchNormAct2d')],
        ],
      },
    ]);
  }
  children.push(['conv_kxk', { cls: 'torch.nn.modules.container.ModuleList', children: convs }]);
  if (b.kernel > 1) {
    s.conv(`${p}.conv_scale.conv.weight`, [b.cout, b.cin / g, 1, 1]);
    s.bn(`${p}.conv_scale.bn`, b.cout);
    children.push([
      'conv_scale',
      {
        cls: 'timm.layers.conv_bn_act.ConvNormAct',
        children: [
          ['conv', convModule(s, `${p}.conv_scale.conv`, b.cin, b.cout, 1, b.stride, g)],
          ['bn', bnModule(s, `${p}.conv_scale.bn`, 1e-5, 'timm.layers.norm_act.BatchNormAct2d')],
        ],
      },
    ]);
  }
  if (b.se) {
    s.conv(`${p}.attn.fc1.weight`, [b.se, b.cout, 1, 1]);
    s.vector(`${p}.attn.fc1.bias`, b.se, -0.1, 0.1);
    s.conv(`${p}.attn.fc2.weight`, [b.cout, b.se, 1, 1]);
    s.vector(`${p}.attn.fc2.bias`, b.cout, -0.1, 0.1);
    children.push([
      'attn',
      {
        cls: 'timm.layers.squeeze_excite.SEModule',
        children: [
          ['fc1', convModule(s, `${p}.attn.fc1`, b.cout, b.se, 1, 1, 1, true)],
          ['fc2', convModule(s, `${p}.attn.fc2`, b.se, b.cout, 1, 1, 1, true)],
        ],
      },
    ]);
  }
  return { cls: 'timm.models.byobnet.MobileOneBlock', attributes: { num_conv_branches: b.branches, groups: g }, children };
}

/** A container module holding `children` under their own (dotted) paths. */
export function tree(cls: string, children: [string, PyModule | null][]): PyModule {
  // Dotted paths become nested containers, as nn.Sequential / nn.ModuleList nest them.
  const root: PyModule = { cls, children: [] };
  for (const [path, module] of children) {
    const parts = path.split('.');
    let at = root;
    for (const part of parts.slice(0, -1)) {
      let next = at.children!.find(([n]) => n === part)?.[1];
      if (!next) {
        next = { cls: 'torch.nn.modules.container.Sequential', children: [] };
        at.children!.push([part, next]);
      }
      at = next;
    }
    at.children!.push([parts.at(-1)!, module]);
  }
  return root;
}

/** EfficientRep of YOLOv6-n (configs/yolov6n.py: width 0.25, depth 0.33): the stem, then per ERBlock a stride-2 block and a RepBlock. */
export function yolov6nBackbone(): BlockSpec[] {
  const widths = [16, 32, 64, 128, 256];
  const repeats = [2, 4, 6, 2];
  const out: BlockSpec[] = [{ name: 'backbone.stem', cin: 3, cout: 16, stride: 2 }];
  for (let i = 0; i < 4; i++) {
    const [cin, c] = [widths[i], widths[i + 1]];
    out.push({ name: `backbone.ERBlock_${i + 2}.0`, cin, cout: c, stride: 2 });
    out.push({ name: `backbone.ERBlock_${i + 2}.1.conv1`, cin: c, cout: c, stride: 1 });
    for (let j = 0; j < repeats[i] - 1; j++) out.push({ name: `backbone.ERBlock_${i + 2}.1.block.${j}`, cin: c, cout: c, stride: 1 });
  }
  return out;
}
