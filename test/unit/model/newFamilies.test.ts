import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectFile } from '../../../src/core/inspect';
import { buildStructure, buildStructureFromTensors } from '../../../src/core/model/buildStructure';
import { blockDescription, INFERRED_LEGEND, structureJson, structureText } from '../../../src/core/model/describe';
import { QAREPVGG_ASSUMED_V1 } from '../../../src/core/model/detectBlocks';
import { allBlocks, type Block, type ModelStructure } from '../../../src/core/model/structure';
import {
  memoryModel,
  qarepvggBlock,
  Synth,
  timmMobileOneBlock,
  tree,
  writeModuleCheckpoint,
  yolov6nBackbone,
  yolov6RepvggBlock,
  TINY_MOBILEONE,
  type BlockSpec,
  type SynthTensor,
} from './synthetic';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-new-families-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const byName = (s: ModelStructure, name: string) => allBlocks(s).find((b) => b.name === name)!;
const roles = (b: Block) => b.branches.map((x) => x.role);

/** A YOLOv6-style stack without YOLOv6's names: stride 2 twice, in == out elsewhere, one grouped block. */
const STACK: BlockSpec[] = [
  { name: 'blocks.0', cin: 8, cout: 16, stride: 2 },
  { name: 'blocks.1', cin: 16, cout: 16, stride: 1 },
  { name: 'blocks.2', cin: 16, cout: 16, stride: 1, groups: 2 },
  { name: 'blocks.3', cin: 16, cout: 32, stride: 2 },
  { name: 'blocks.4', cin: 32, cout: 32, stride: 1 },
];

function qarepStack(version: 'v1' | 'v2', specs = STACK, seed = 1) {
  const s = new Synth(seed);
  const modules = specs.map((b) => [b.name, qarepvggBlock(s, b, version)] as [string, ReturnType<typeof qarepvggBlock>]);
  return { s, root: tree('__main__.Stack', modules) };
}

describe('YOLOv6 QARepVGGBlock in a state dict', () => {
  const { s } = qarepStack('v1');
  const structure = buildStructureFromTensors('torch-zip', s.tensors);

  it('is its own family, told from RepVGGBlock by the bare 1×1 and the BN after the sum', () => {
    expect(structure.family).toBe('yolov6-qarepvgg');
    expect(structure.form).toBe('train');
    expect(allBlocks(structure).map((b) => b.name)).toEqual(STACK.map((b) => b.name));
    expect(structure.other).toEqual([]);
    for (const b of allBlocks(structure)) {
      const one = b.branches.find((x) => x.role === 'oneByOne')!;
      expect(one).toMatchObject({ module: `${b.name}.rbr_1x1`, convWeight: `${b.name}.rbr_1x1.weight`, withoutBn: true });
      expect(one.bn).toBeUndefined();
      expect(b.postBn).toMatchObject({ weight: `${b.name}.bn.weight`, var: `${b.name}.bn.running_var`, eps: 1e-3, epsSource: 'family-default' });
      // The post BN's tensors (num_batches_tracked too) belong to the block.
      expect(b.tensors).toContain(`${b.name}.bn.num_batches_tracked`);
    }
  });

  it('infers the tensorless identity where in == out, marks it inferred, and says why it is absent elsewhere', () => {
    expect(roles(byName(structure, 'blocks.0'))).toEqual(['dense', 'oneByOne']);
    expect(byName(structure, 'blocks.0').absent).toEqual([
      { role: 'avgPool', reason: expect.stringContaining('assumed QARepVGGBlock') },
      { role: 'identity', reason: 'in_channels ≠ out_channels' },
    ]);
    const b1 = byName(structure, 'blocks.1');
    expect(roles(b1)).toEqual(['dense', 'oneByOne', 'identity']);
    expect(b1.branches[2]).toEqual({ role: 'identity', module: 'blocks.1.rbr_identity', withoutBn: true, presence: 'inferred' });
    expect(b1).toMatchObject({ stride: 1, strideSource: 'identity-rule', inChannels: 16, outChannels: 16 });
    // Nothing in a state dict says a block without identity has stride 2, and YOLOv6 has no stage convention.
    expect(byName(structure, 'blocks.3')).toMatchObject({ stride: null, strideSource: 'unknown' });
    expect(blockDescription(b1)).toBe('3×3 ✓ 1×1 ✓ id ✓? avg – · 16→16 s1? · 1×1, id without BN · BN after sum');
  });

  it('takes the groups of a grouped block from the identity rule only through in == out, never from the block before (YOLOv6 does not group)', () => {
    const b2 = byName(structure, 'blocks.2');
    // Weight [16, 8, 3, 3]: with groups 1 in = 8 ≠ 16, so no identity is inferred.
    expect(b2).toMatchObject({ groups: 1, groupsSource: 'default', inChannels: 8 });
    expect(roles(b2)).toEqual(['dense', 'oneByOne']);
  });

  it('warns once, for the model, that a state dict cannot tell QARepVGGBlockV2 (and how to say it)', () => {
    expect(structure.warnings).toEqual([{ message: QAREPVGG_ASSUMED_V1 }]);
    expect(QAREPVGG_ASSUMED_V1).toContain('--qarepvgg v2');
    expect(allBlocks(structure).every((b) => b.warnings.length === 0)).toBe(true);
  });

  it('with qarepvgg v2: QARepVGGBlockV2, an inferred 3×3 AvgPool wherever the identity is, and no warning', () => {
    const v2 = buildStructureFromTensors('torch-zip', s.tensors, [], { qarepvgg: 'v2' });
    expect(v2.family).toBe('yolov6-qarepvgg-v2');
    expect(v2.warnings).toEqual([]);
    expect(roles(byName(v2, 'blocks.1'))).toEqual(['dense', 'oneByOne', 'identity', 'avgPool']);
    expect(byName(v2, 'blocks.1').branches[3]).toEqual({ role: 'avgPool', module: 'blocks.1.rbr_avg', withoutBn: true, presence: 'inferred', poolKernel: 3 });
    expect(roles(byName(v2, 'blocks.3'))).toEqual(['dense', 'oneByOne']);
    expect(
      byName(v2, 'blocks.3')
        .absent?.map((a) => a.role)
        .sort(),
    ).toEqual(['avgPool', 'identity']);
    expect(blockDescription(byName(v2, 'blocks.4'))).toBe('3×3 ✓ 1×1 ✓ id ✓? avg ✓? · 32→32 s1? · 1×1, id without BN · BN after sum');
    // qarepvgg v1 said outright: no warning either.
    expect(buildStructureFromTensors('torch-zip', s.tensors, [], { qarepvgg: 'v1' }).warnings).toEqual([]);
  });

  it('counts the post BN: in the train form, and in the deploy checkpoint, which keeps it', () => {
    const b = byName(structure, 'blocks.1');
    expect(b.params.train).toBe(16 * 16 * 9 + 2 * 16 + 16 * 16 + 2 * 16);
    expect(b.params.deploy).toBe(16 * 16 * 9 + 16 + 2 * 16);
  });

  it("with YOLOv6's names, the stem and each ERBlock's first block have stride 2, even where in == out", () => {
    const specs: BlockSpec[] = [
      { name: 'backbone.stem', cin: 3, cout: 8, stride: 2 },
      { name: 'backbone.ERBlock_2.0', cin: 8, cout: 8, stride: 2 },
      { name: 'backbone.ERBlock_2.1.conv1', cin: 8, cout: 8, stride: 1 },
      { name: 'backbone.ERBlock_2.1.block.0', cin: 8, cout: 8, stride: 1 },
    ];
    const st = buildStructureFromTensors('torch-zip', qarepStack('v1', specs).s.tensors);
    expect(allBlocks(st).map((b) => [b.name, b.stride, b.strideSource, roles(b).includes('identity')])).toEqual([
      ['backbone.stem', 2, 'stage-convention', false],
      ['backbone.ERBlock_2.0', 2, 'stage-convention', false],
      ['backbone.ERBlock_2.1.conv1', 1, 'stage-convention', true],
      ['backbone.ERBlock_2.1.block.0', 1, 'stage-convention', true],
    ]);
    expect(byName(st, 'backbone.ERBlock_2.0').absent).toContainEqual({ role: 'identity', reason: expect.stringMatching(/^stride 2 \(inferred/) });
  });

  it('a deploy checkpoint (rbr_reparam + bn, as switch_to_deploy leaves it) is a deploy block that keeps its post BN', () => {
    const d = new Synth(3);
    d.bn('blocks.0.bn', 16);
    d.conv('blocks.0.rbr_reparam.weight', [16, 16, 3, 3]);
    d.vector('blocks.0.rbr_reparam.bias', 16, -1, 1);
    const st = buildStructureFromTensors('torch-zip', d.tensors);
    const b = allBlocks(st)[0];
    expect(st.family).toBe('yolov6-qarepvgg');
    expect(b).toMatchObject({ form: 'deploy', branches: [], postBn: { weight: 'blocks.0.bn.weight' } });
    expect(st.other).toEqual([]);
    expect(st.warnings).toEqual([]);
    expect(blockDescription(b)).toBe('fused 3×3 · 16→16 s? · BN after sum');
    expect(st.params.total).toBe(st.params.afterFusion);
  });

  it('plain YOLOv6 RepVGGBlock and upstream RepVGG stay what they were', () => {
    const r = new Synth(4);
    for (const b of STACK) yolov6RepvggBlock(r, b);
    const st = buildStructureFromTensors('torch-zip', r.tensors);
    expect(st.family).toBe('repvgg');
    expect(allBlocks(st).every((b) => b.postBn === undefined && b.absent === undefined && b.branches.every((x) => !x.withoutBn))).toBe(true);
    const hinted = buildStructureFromTensors(
      'torch-zip',
      r.tensors.map((t) => ({ ...t, name: `backbone.ERBlock_2.${t.name}` })),
    );
    expect(hinted.family).toBe('yolov6-repvgg');
  });

  it('refuses to invent a post BN: a block whose bn tensors are incomplete says so', () => {
    const { s: broken } = qarepStack('v1');
    const tensors = broken.tensors.filter((t) => t.name !== 'blocks.1.bn.running_var');
    const st = buildStructureFromTensors('torch-zip', tensors);
    expect(byName(st, 'blocks.1').postBn).toBeUndefined();
    expect(byName(st, 'blocks.1').warnings).toEqual(['blocks.1.bn: BatchNorm tensors missing: running_var']);
  });

  it('inspect text says once per reason why a branch is absent, and which were inferred', () => {
    const text = structureText(structure, 'qarep.pth');
    expect(text.split('\n').filter((l) => l.startsWith('  ? = ') || l.startsWith('  note: '))).toEqual([
      INFERRED_LEGEND,
      '  note: s? (blocks.0, blocks.2, blocks.3): unknown: the file does not store it',
      '  note: s1? (blocks.1, blocks.4): inferred: an identity branch means stride 1',
      "  note: avg – (blocks.0, blocks.1, blocks.2, … (5 blocks)): assumed QARepVGGBlock, which has none: a state dict cannot show QARepVGGBlockV2's tensorless AvgPool branch (rbr_avg); say v2 if the model uses QARepVGGBlockV2",
      '  note: id – (blocks.0, blocks.2, blocks.3): in_channels ≠ out_channels',
      '  note: id ✓? (blocks.1, blocks.4): inferred, as a state dict cannot show a branch without tensors: the family puts it where in == out at stride 1',
    ]);
    expect(text).toContain(`warning: ${QAREPVGG_ASSUMED_V1}`);
  });

  it('inspect --json lists each branch kind, its presence, the absent ones with their reason, and the post BN', () => {
    const v2 = buildStructureFromTensors('torch-zip', s.tensors, [], { qarepvgg: 'v2' });
    const json = structureJson(v2) as { stages: { blocks: Record<string, unknown>[] }[] };
    const b1 = json.stages.flatMap((st) => st.blocks).find((b) => b.name === 'blocks.1')!;
    expect(b1.branches).toEqual({ dense: true, oneByOne: true, identity: true, avgPool: true });
    expect(b1.postBn).toBe(true);
    expect(b1.postBnModule).toBe('blocks.1.bn');
    expect(b1.branchList).toEqual([
      { role: 'dense', module: 'blocks.1.rbr_dense.conv', label: '3×3 conv + BN', bn: true },
      { role: 'oneByOne', module: 'blocks.1.rbr_1x1', label: '1×1 conv (no BN)', bn: false },
      { role: 'identity', module: 'blocks.1.rbr_identity', label: 'identity (no BN, inferred)', bn: false, presence: 'inferred' },
      { role: 'avgPool', module: 'blocks.1.rbr_avg', label: '3×3 AvgPool (zero padding counted, inferred)', bn: false, presence: 'inferred', poolKernel: 3 },
    ]);
    const b0 = json.stages.flatMap((st) => st.blocks).find((b) => b.name === 'blocks.0')!;
    expect(b0.absentBranches).toEqual([
      { role: 'identity', reason: 'in_channels ≠ out_channels' },
      { role: 'avgPool', reason: 'in_channels ≠ out_channels' },
    ]);
  });
});

describe('YOLOv6 QARepVGG blocks in a pickled model: the module tree says it all', () => {
  it('QARepVGGBlockV2 by class name: identity and AvgPool present as modules exactly where the constructor made them', async () => {
    const { root } = qarepStack('v2');
    const { structure: st } = await inspectFile(await writeModuleCheckpoint(path.join(dir, 'qarep_v2_module.pt'), root));
    expect(st.family).toBe('yolov6-qarepvgg-v2');
    expect(st.warnings).toEqual([]);
    const b1 = byName(st, 'blocks.1');
    expect(b1.branches.slice(2)).toEqual([
      { role: 'identity', module: 'blocks.1.rbr_identity', withoutBn: true, presence: 'module' },
      { role: 'avgPool', module: 'blocks.1.rbr_avg', withoutBn: true, presence: 'module', poolKernel: 3 },
    ]);
    expect(b1).toMatchObject({ stride: 1, strideSource: 'attribute', groupsSource: 'attribute' });
    expect(byName(st, 'blocks.3')).toMatchObject({ stride: 2, strideSource: 'attribute' });
    expect(byName(st, 'blocks.3').absent).toEqual([
      { role: 'identity', reason: 'rbr_identity is None in the pickled module (in ≠ out or stride ≠ 1)' },
      { role: 'avgPool', reason: 'rbr_avg is None in the pickled module (in ≠ out or stride ≠ 1)' },
    ]);
    // groups from the conv's attribute: the grouped block is 16 → 16 and has its identity.
    expect(byName(st, 'blocks.2')).toMatchObject({ groups: 2, inChannels: 16 });
    expect(roles(byName(st, 'blocks.2'))).toEqual(['dense', 'oneByOne', 'identity', 'avgPool']);
    expect(byName(st, 'blocks.1').postBn).toMatchObject({ eps: 1e-3, epsSource: 'attribute' });
    expect(blockDescription(b1)).toBe('3×3 ✓ 1×1 ✓ id ✓ avg ✓ · 16→16 s1 · 1×1, id without BN · BN after sum');
  });

  it('QARepVGGBlock by class name, whatever the caller assumed: no AvgPool, and it says why', async () => {
    const { root } = qarepStack('v1');
    const file = await writeModuleCheckpoint(path.join(dir, 'qarep_v1_module.pt'), root);
    const { structure: st } = await inspectFile(file);
    expect(st.family).toBe('yolov6-qarepvgg');
    expect(st.warnings).toEqual([]);
    expect(byName(st, 'blocks.1').absent).toEqual([{ role: 'avgPool', reason: 'QARepVGGBlock has none (only QARepVGGBlockV2 has rbr_avg)' }]);
    // The class name wins over what the caller says.
    const model = await (await import('../../../src/core/formats/openModelFile')).openModelFile(file);
    try {
      expect(buildStructure(model, { qarepvgg: 'v2' }).family).toBe('yolov6-qarepvgg');
    } finally {
      await model.close();
    }
  });

  it('an AvgPool2d one conv cannot express (count_include_pad=False) is flagged, and fusion will refuse it', async () => {
    const { root } = qarepStack('v2');
    const blocks = root.children!.find(([n]) => n === 'blocks')![1]!;
    const b1 = blocks.children!.find(([n]) => n === '1')![1]!;
    const avg = b1.children!.find(([n]) => n === 'rbr_avg')![1]!;
    avg.attributes = { ...avg.attributes, count_include_pad: false };
    const { structure: st } = await inspectFile(await writeModuleCheckpoint(path.join(dir, 'qarep_v2_bad_pool.pt'), root));
    const b = byName(st, 'blocks.1');
    expect(b.branches.find((x) => x.role === 'avgPool')).toEqual({ role: 'avgPool', module: 'blocks.1.rbr_avg', withoutBn: true, presence: 'module' });
    expect(b.warnings).toEqual(['blocks.1.rbr_avg: an AvgPool2d that one conv cannot express: count_include_pad is False']);
  });
});

describe('timm MobileOne (byobnet MobileOneBlock)', () => {
  const SPECS = TINY_MOBILEONE;
  const build = () => {
    const s = new Synth(7);
    const modules = SPECS.map((b) => [b.name, timmMobileOneBlock(s, b)] as [string, ReturnType<typeof timmMobileOneBlock>]);
    const fc = {
      cls: 'torch.nn.modules.linear.Linear',
      params: [
        ['weight', s.matrix('head.fc.weight', [10, 24])],
        ['bias', s.vector('head.fc.bias', 10, -0.1, 0.1)],
      ] as [string, SynthTensor][],
    };
    return { s, root: tree('timm.models.byobnet.ByobNet', [...modules, ['head.fc', fc]]) };
  };

  const check = (st: ModelStructure) => {
    expect(st.family).toBe('timm-mobileone');
    expect(st.warnings).toEqual([]);
    expect(allBlocks(st).map((b) => b.name)).toEqual(SPECS.map((b) => b.name));
    expect(allBlocks(st).map((b) => [b.inChannels, b.outChannels, b.kernel, b.groups, b.stride])).toEqual(
      SPECS.map((b) => [b.cin, b.cout, b.kernel, b.groups ?? 1, b.stride]),
    );
    expect(roles(byName(st, 'stages.0.0'))).toEqual(['dense', 'dense', 'dense', 'oneByOne']);
    // Pointwise: k×k branches of kernel 1, no scale branch; identity where in == out.
    expect(roles(byName(st, 'stages.0.1'))).toEqual(['dense', 'dense', 'dense']);
    expect(roles(byName(st, 'stages.0.3'))).toEqual(['dense', 'dense', 'dense', 'identity']);
    expect(roles(byName(st, 'stages.0.2'))).toEqual(['dense', 'dense', 'dense', 'oneByOne', 'identity']);
    expect(byName(st, 'stages.0.2').branches.map((b) => b.module)).toEqual([
      'stages.0.2.conv_kxk.0.conv',
      'stages.0.2.conv_kxk.1.conv',
      'stages.0.2.conv_kxk.2.conv',
      'stages.0.2.conv_scale.conv',
      'stages.0.2.identity',
    ]);
    expect(byName(st, 'stages.1.0').se).toEqual({
      down: 'stages.1.0.attn.fc1.weight',
      downBias: 'stages.1.0.attn.fc1.bias',
      up: 'stages.1.0.attn.fc2.weight',
      upBias: 'stages.1.0.attn.fc2.bias',
    });
    expect(byName(st, 'stages.0.0').se).toBeUndefined();
    expect([...st.other].sort()).toEqual(['head.fc.bias', 'head.fc.weight']);
  };

  it('in a state dict: numbered k×k branches, the scale branch, depthwise groups (from the identity, or the block before), SE as attn', () => {
    const st = buildStructureFromTensors('torch-zip', build().s.tensors);
    check(st);
    expect(byName(st, 'stages.0.0')).toMatchObject({ groupsSource: 'chain', strideSource: 'stage-convention' });
    expect(byName(st, 'stages.0.2')).toMatchObject({ groupsSource: 'identity-bn', strideSource: 'identity-rule' });
  });

  it('in a safetensors file, whose writers sort tensors by name, blocks are still in model order (stem first, stages by number)', () => {
    const { s } = build();
    const sorted = [...s.tensors].sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(sorted[0].name.startsWith('head.')).toBe(true);
    check(buildStructureFromTensors('safetensors', sorted));
  });

  it('in a pickled model: the same, with strides and groups as facts', async () => {
    const { structure: st } = await inspectFile(await writeModuleCheckpoint(path.join(dir, 'timm_mobileone.pt'), build().root));
    check(st);
    expect(allBlocks(st).every((b) => b.strideSource === 'attribute' && b.groupsSource === 'attribute')).toBe(true);
  });

  it('a deploy block named reparam_conv is MobileOne when its class says so (timm RepVGG has the same name)', () => {
    const d = new Synth(9);
    d.conv('stages.0.0.reparam_conv.weight', [8, 1, 3, 3]);
    d.vector('stages.0.0.reparam_conv.bias', 8, -1, 1);
    const modules = [{ path: 'stages.0.0', className: 'timm.models.byobnet.MobileOneBlock', attributes: {} }];
    expect(buildStructureFromTensors('torch-zip', d.tensors).family).toBe('timm-repvgg');
    expect(buildStructureFromTensors('torch-zip', d.tensors, modules).family).toBe('timm-mobileone');
  });

  it('timm RepVGG keeps its SE (attn.fc1/fc2) inside the block too', () => {
    const r = new Synth(10);
    r.conv('stages.0.0.conv_kxk.conv.weight', [16, 8, 3, 3]);
    r.bn('stages.0.0.conv_kxk.bn', 16);
    r.conv('stages.0.0.conv_1x1.conv.weight', [16, 8, 1, 1]);
    r.bn('stages.0.0.conv_1x1.bn', 16);
    r.conv('stages.0.0.attn.fc1.weight', [4, 16, 1, 1]);
    r.vector('stages.0.0.attn.fc1.bias', 4, 0, 1);
    r.conv('stages.0.0.attn.fc2.weight', [16, 4, 1, 1]);
    r.vector('stages.0.0.attn.fc2.bias', 16, 0, 1);
    const st = buildStructureFromTensors('torch-zip', r.tensors);
    expect(st.family).toBe('timm-repvgg');
    expect(allBlocks(st)[0].se).toMatchObject({ down: 'stages.0.0.attn.fc1.weight', up: 'stages.0.0.attn.fc2.weight' });
    expect(st.other).toEqual([]);
  });
});

describe('full-size YOLOv6-n backbone (names and shapes of configs/yolov6n.py at width 0.25)', () => {
  it('finds every QARepVGG block with YOLOv6 strides and identities', () => {
    const { s } = qarepStack('v1', yolov6nBackbone());
    const st = buildStructure(memoryModel(s.tensors), { qarepvgg: 'v2' });
    expect(st.family).toBe('yolov6-qarepvgg-v2');
    const blocks = allBlocks(st);
    expect(blocks).toHaveLength(yolov6nBackbone().length);
    expect(blocks.map((b) => [b.name, b.inChannels, b.outChannels, b.stride, roles(b).length])).toEqual(
      yolov6nBackbone().map((b) => [b.name, b.cin, b.cout, b.stride, b.stride === 1 && b.cin === b.cout ? 4 : 2]),
    );
  });
});
