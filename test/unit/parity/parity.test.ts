import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertFile } from '../../../src/core/convert/convert';
import { FusionError } from '../../../src/core/fuse/fuseBlock';
import { allBlocks } from '../../../src/core/model/structure';
import { ParityError } from '../../../src/core/parity/errors';
import { checkParity, compareModels, type ParityOptions, type ParityResult } from '../../../src/core/parity/parity';
import { parityWorkerUnderTest } from './bundle';
import { MODELS, TINY, trainFileWith, wrongDeployFile, wrongFusedOnnx } from './faultyFiles';
import { npyBytes } from './npyWriter';

const env = parityWorkerUnderTest('replens-parity-');
let small: ParityOptions;

beforeAll(async () => {
  small = { workerPath: env.workerPath, shape: [1, 3, 32, 32], inputs: 2, latencyRuns: 1 };
});

const verdicts = (r: ParityResult) => Object.fromEntries(r.blocks.map((b) => [b.name, b.pass]));
const TINY_BLOCKS = ['stage0', 'stage1.0', 'stage2.0', 'stage2.1', 'stage3.0', 'stage3.1', 'stage4.0'];

describe('checkParity: train form vs the deploy form fused in memory', () => {
  it.each([
    ['repvgg_tiny_train.pth', 7],
    ['repvgg_tiny_fp16.pt', 7],
    ['repvgg_grouped_train.pth', 8],
    ['repvgg_se_train.pth', 6],
    ['backbone_in_detector.pth', 5],
    ['yolov7_repconv_train.pt', 3],
    ['yolov7_repconv_train_sd.pth', 3],
    ['timm_repvgg_train.safetensors', 5],
    ['mobileone_train.pth', 11],
    ['mmpretrain_repvgg_train.pth', 6],
    ['repvgg_tiny_train.onnx', 7],
  ])(
    '%s passes, block by block',
    async (file, blocks) => {
      // --shape is the input of the checked part: YOLOv7's blocks take 32 channels, not the image's 3.
      const r = await checkParity(path.join(MODELS, file), file.startsWith('yolov7') ? { ...small, shape: [1, 32, 32, 32] } : small);
      expect(r.blocks).toHaveLength(blocks);
      expect(r.blocks.filter((b) => !b.pass)).toEqual([]);
      expect(r.outputs.every((o) => o.pass && o.cosine > 0.999999)).toBe(true);
      expect(r.pass).toBe(true);
      expect(r.forms.deploy.params).toBeLessThan(r.forms.train.params);
      expect(r.forms.deploy.nodes).toBeLessThan(r.forms.train.nodes);
    },
    30_000,
  );

  it.each(['repvgg_tiny_train_folded.onnx'])(
    '%s (BN folded by the exporter) runs against itself with its blocks fused in place, block by block',
    async (file) => {
      const r = await checkParity(path.join(MODELS, file), small);
      expect(r.forms.deploy.source).toBe('ONNX with blocks fused in memory');
      expect(r.outputs.map((o) => o.name)).toEqual(['output']);
      expect(r.outputs.every((o) => o.pass && o.cosine > 0.999999)).toBe(true);
      expect(r.blocks.map((b) => b.name)).toEqual(TINY_BLOCKS);
      expect(r.blocks.filter((b) => !b.pass || !(b.cosine > 0.999999))).toEqual([]);
      expect(r.pass).toBe(true);
      expect(r.forms.deploy.nodes).toBeLessThan(r.forms.train.nodes);
    },
    30_000,
  );

  it('produces the documented JSON', async () => {
    const r = JSON.parse(JSON.stringify(await checkParity(TINY, { ...small, seed: 7 })));
    expect(Object.keys(r)).toEqual([
      'pass',
      'inputs',
      'atol',
      'rtol',
      'toleranceBasis',
      'advice',
      'outputs',
      'blocks',
      'forms',
      'topology',
      'scope',
      'shapeUse',
      'shapes',
      'seed',
      'notes',
    ]);
    expect(r).toMatchObject({
      pass: true,
      inputs: 2,
      atol: 1e-4,
      rtol: 1e-3,
      advice: null,
      topology: 'classifier',
      seed: 7,
      shapes: { input: [1, 3, 32, 32] },
    });
    expect(r.toleranceBasis).toBe('the float32 defaults: a float32 deploy file differs from its train form by float32 rounding only');
    expect(r.scope).toBe('checks the whole model: the 7 RepVGG blocks in a chain, then the classifier (linear)');
    expect(r.shapeUse).toBe("--shape is the model's input: [batch, 3, height, width]");
    expect(r.outputs).toHaveLength(1);
    expect(r.outputs[0]).toMatchObject({ name: 'output', top1Agreement: 1, pass: true, elements: 2 * 10, mismatched: 0 });
    for (const key of ['maxAbs', 'maxRel', 'meanAbs', 'cosine']) expect(typeof r.outputs[0][key]).toBe('number');
    expect(r.blocks.map((b: { name: string }) => b.name)).toEqual(['stage0', 'stage1.0', 'stage2.0', 'stage2.1', 'stage3.0', 'stage3.1', 'stage4.0']);
    for (const b of r.blocks) expect(Object.keys(b)).toEqual(expect.arrayContaining(['name', 'maxAbs', 'maxRel', 'cosine', 'pass']));
    for (const form of ['train', 'deploy']) {
      expect(Object.keys(r.forms[form])).toEqual(expect.arrayContaining(['latencyMs', 'params', 'macs', 'nodes']));
      expect(r.forms[form].latencyMs).toBeGreaterThan(0);
    }
    expect(r.forms.train).toMatchObject({ params: 31322, macs: 235840, nodes: 49, source: 'train form' });
    expect(r.forms.deploy).toMatchObject({ params: 27762, macs: 212288, nodes: 17, source: 'deploy form, fused in memory' });
  }, 30_000);

  it('takes one input from a .npy file instead of random samples', async () => {
    const npy = path.join(env.dir, 'x.npy');
    const data = Float32Array.from({ length: 2 * 3 * 40 * 40 }, (_, i) => Math.sin(i));
    await writeFile(npy, npyBytes([2, 3, 40, 40], data));
    const r = await checkParity(TINY, { ...small, shape: undefined, inputFile: npy });
    expect(r).toMatchObject({ pass: true, inputs: 1, seed: null, shapes: { input: [2, 3, 40, 40] } });
    await writeFile(npy, npyBytes([1, 4, 8, 8], new Float32Array(256)));
    await expect(checkParity(TINY, { ...small, shape: undefined, inputFile: npy })).rejects.toThrow(/x\.npy: shape \(1, 4, 8, 8\) does not fit input 'input'/);
  }, 30_000);

  it('refuses a shape whose channels the model cannot take, and a deploy-only file', async () => {
    const e = await checkParity(TINY, { ...small, shape: [1, 4, 32, 32] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ParityError);
    expect((e as Error).message).toBe(
      `${TINY}: --shape 1,4,32,32 asks for 4 channels, but the part of the model this check runs starts at stage0, a RepVGG block that takes 3 channels. ` +
        "RepLens checks the whole model: the 7 RepVGG blocks in a chain, then the classifier (linear). --shape is the model's input: [batch, 3, height, width]. Pass --shape 1,3,32,32",
    );
    await expect(checkParity(path.join(MODELS, 'repvgg_tiny_deploy.pth'), small)).rejects.toThrow(/every block is already in deploy form/);
  });

  it('can be cancelled', async () => {
    const controller = new AbortController();
    const e = await checkParity(TINY, { ...small, signal: controller.signal, onProgress: (p) => p.phase === 'load' && controller.abort() }).catch(
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(ParityError);
    expect((e as ParityError).code).toBe('cancelled');
  }, 30_000);
});

describe('wrong fusions are caught where they happen', () => {
  it('a dropped identity branch fails that block; the blocks before it pass', async () => {
    const bad = await wrongDeployFile(env.dir, 'no_identity.pth', (s) => {
      const block = allBlocks(s).find((b) => b.name === 'stage3.1')!;
      block.branches = block.branches.filter((b) => b.role !== 'identity');
    });
    const r = await compareModels(TINY, bad, small);
    expect(r.pass).toBe(false);
    expect(verdicts(r)).toMatchObject({ stage0: true, 'stage1.0': true, 'stage2.0': true, 'stage2.1': true, 'stage3.0': true, 'stage3.1': false });
    expect(r.outputs[0].pass).toBe(false);
  }, 30_000);

  it('a wrong BN eps in one block fails that block; the blocks before it pass', async () => {
    const bad = await wrongDeployFile(env.dir, 'eps_block.pth', (s) => {
      for (const branch of allBlocks(s).find((b) => b.name === 'stage2.1')!.branches) branch.bn!.eps = 1e-2;
    });
    const r = await compareModels(TINY, bad, small);
    expect(verdicts(r)).toMatchObject({ stage0: true, 'stage1.0': true, 'stage2.0': true, 'stage2.1': false });
    expect(r.pass).toBe(false);
  }, 30_000);

  it('a wrong BN eps for the whole model (convert --eps) fails from the first block', async () => {
    const output = path.join(env.dir, 'eps_all.pth');
    await convertFile(TINY, { output, eps: 1e-2, force: true });
    const r = await compareModels(TINY, output, small);
    expect(r.blocks[0]).toMatchObject({ name: 'stage0', pass: false });
    // The same eps on the train side too is what the user asked for: then the two agree.
    expect((await compareModels(TINY, output, { ...small, eps: 1e-2 })).pass).toBe(true);
  }, 30_000);

  it('a correct conversion passes as a file, and so does the ONNX export PyTorch made of the same model', async () => {
    const output = path.join(env.dir, 'good.pth');
    await convertFile(TINY, { output, force: true });
    expect((await compareModels(TINY, output, small)).pass).toBe(true);
    // PyTorch's export has a fixed 1×3×32×32 input and only the logits, which match by name.
    const exported = await compareModels(path.join(MODELS, 'repvgg_tiny_train.onnx'), output, { ...small, shape: undefined });
    expect(exported).toMatchObject({ pass: true, topology: 'onnx', blocks: [], shapes: { input: [1, 3, 32, 32] } });
    expect(exported.forms.train.source).toBe('ONNX as is');
    // The export's blocks end at their branch sums, RepLens' graph of the checkpoint after the activation.
    expect(exported.notes).toContain(
      `blocks are not compared one by one: ${output} gives each block's result after its activation, ${path.join(MODELS, 'repvgg_tiny_train.onnx')} the sum of its branches before it`,
    );
  }, 30_000);
});

describe('ONNX models compare block by block, at each block’s branch sum', () => {
  it.each(['repvgg_tiny_train.onnx', 'repvgg_tiny_train_folded.onnx', 'repvgg_tiny_external.onnx'])(
    '%s against its converted file',
    async (file) => {
      const input = path.join(MODELS, file);
      const output = path.join(env.dir, file.replace('.onnx', '.deploy.onnx'));
      const converted = await convertFile(input, { output, force: true });
      const r = await compareModels(input, output, small);
      expect(r.blocks.map((b) => b.name)).toEqual(converted.graph!.blockOutputs.map((b) => b.block));
      expect(r.blocks.map((b) => b.name)).toEqual(TINY_BLOCKS);
      expect(r.blocks.filter((b) => !b.pass)).toEqual([]);
      expect(r).toMatchObject({ pass: true, topology: 'onnx' });
      expect(r.forms.deploy.nodes).toBe(converted.graph!.nodes.after);
    },
    30_000,
  );

  it('two exports of the same model, train and deploy, match block by block by name', async () => {
    const r = await compareModels(path.join(MODELS, 'repvgg_tiny_train.onnx'), path.join(MODELS, 'repvgg_tiny_deploy.onnx'), small);
    expect(verdicts(r)).toEqual(Object.fromEntries(TINY_BLOCKS.map((b) => [b, true])));
  }, 30_000);

  it('a dropped identity branch in one fused block fails that block; the blocks before it pass', async () => {
    const folded = path.join(MODELS, 'repvgg_tiny_train_folded.onnx');
    const bad = await wrongFusedOnnx(env.dir, 'folded_no_identity.onnx', folded, (s) => {
      const block = allBlocks(s).find((b) => b.name === 'stage2.1')!;
      block.branches = block.branches.filter((b) => b.role !== 'identity');
    });
    const r = await compareModels(folded, bad, small);
    expect(r.pass).toBe(false);
    expect(verdicts(r)).toMatchObject({ stage0: true, 'stage1.0': true, 'stage2.0': true, 'stage2.1': false });
    expect(r.outputs[0].pass).toBe(false);
  }, 30_000);

  it('a wrong BN eps in one fused block fails that block; the blocks before it pass', async () => {
    const train = path.join(MODELS, 'repvgg_tiny_train.onnx');
    const bad = await wrongFusedOnnx(env.dir, 'eps_block.onnx', train, (s) => {
      for (const branch of allBlocks(s).find((b) => b.name === 'stage3.0')!.branches) branch.bn!.eps = 1e-1;
    });
    const r = await compareModels(train, bad, small);
    expect(verdicts(r)).toMatchObject({ stage0: true, 'stage1.0': true, 'stage2.0': true, 'stage2.1': true, 'stage3.0': false });
    expect(r.pass).toBe(false);
  }, 30_000);
});

describe('two checkpoints', () => {
  it('a YOLOv7 deploy state dict, which stores neither family nor groups, is run with its train file’s geometry', async () => {
    const train = path.join(MODELS, 'yolov7_repconv_train_sd.pth');
    const output = path.join(env.dir, 'yolo.deploy.pth');
    await convertFile(train, { output, force: true });
    const r = await compareModels(train, output, { ...small, shape: [1, 32, 16, 16] });
    expect(r).toMatchObject({ pass: true, topology: 'blockwise' });
    expect(r.notes).toContain(`${output}: model.5: family yolov7-repconv, groups 2, inChannels 32 taken from the reference (the file does not store them)`);
    // Deploy weights fused with RepVGG's eps 1e-5 instead of YOLO's 1e-3 are a real difference.
    await convertFile(train, { output, force: true, eps: 1e-5 });
    expect((await compareModels(train, output, { ...small, shape: [1, 32, 16, 16] })).blocks.map((b) => b.pass)).toEqual([false, false, false]);
  }, 30_000);
});

describe('NaN and Inf never pass', () => {
  it('NaN weights outside the blocks: the same NaN on both sides still fails', async () => {
    const nan = await trainFileWith(env.dir, 'nan_head.pth', 'linear.weight', NaN);
    const r = await checkParity(nan, small);
    expect(r.pass).toBe(false);
    expect(r.outputs[0].pass).toBe(false);
    expect(r.outputs[0].nonFinite.reference).toBe(2 * 10);
    expect(r.outputs[0].top1Agreement).toBeNull();
    expect(r.blocks.every((b) => b.pass)).toBe(true);
  }, 30_000);

  it('NaN in a deploy file’s fused weight fails that block', async () => {
    const bad = await wrongDeployFile(env.dir, 'nan_deploy.pth', () => undefined, { 'stage2.0.rbr_reparam.bias': NaN });
    const r = await compareModels(TINY, bad, small);
    expect(verdicts(r)).toMatchObject({ stage0: true, 'stage1.0': true, 'stage2.0': false });
    expect(r.blocks.find((b) => b.name === 'stage2.0')!.nonFinite.candidate).toBeGreaterThan(0);
  }, 30_000);

  it('Inf in a train block weight: fusion refuses it and names the block', async () => {
    const inf = await trainFileWith(env.dir, 'inf_block.pth', 'stage1.0.rbr_dense.conv.weight', Infinity);
    const e = await checkParity(inf, small).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FusionError);
    expect((e as Error).message).toMatch(/^stage1\.0: stage1\.0\.rbr_dense\.conv\.weight contains Infinity/);
  });
});

describe('what part of a model is checked', () => {
  // A training checkpoint written by YOLOv7's own train.py (test/fixtures/peers/yolov7): a pickled models.yolo.Model.
  const YOLOV7 = path.join(__dirname, '..', '..', 'fixtures', 'peers', 'yolov7', 'tiny_repconv_last.pt');
  const SCOPE = "checks the 5 RepConv blocks, each on its own input; the detector's other layers are not in the file as a graph";

  it('a YOLOv7 training checkpoint without --shape: its RepConv blocks, each on its own input, and the result says so', async () => {
    const r = await checkParity(YOLOV7, { ...small, shape: undefined });
    expect(r).toMatchObject({ pass: true, topology: 'blockwise', scope: SCOPE });
    expect(r.blocks.map((b) => b.name)).toEqual(['model.2', 'model.3', 'model.4', 'model.8', 'model.9']);
    expect(r.shapes).toEqual({
      'model.2:input': [1, 16, 32, 32],
      'model.3:input': [1, 16, 32, 32],
      'model.4:input': [1, 16, 32, 32],
      'model.8:input': [1, 40, 32, 32],
      'model.9:input': [1, 24, 32, 32],
    });
    expect(r.shapeUse).toContain(
      "its batch, height and width are used for every block's input, each block with its own channels (model.2 16, model.3 16, model.4 16, model.8 40, model.9 24)",
    );
  }, 30_000);

  it("--shape 1,3,64,64 (the detector's image) is refused with what the checked part takes and what to pass", async () => {
    const e = await checkParity(YOLOV7, { ...small, shape: [1, 3, 64, 64] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ParityError);
    expect((e as ParityError).code).toBe('input');
    expect((e as Error).message).toBe(
      `${YOLOV7}: --shape 1,3,64,64 asks for 3 channels, but the part of the model this check runs starts at model.2, a RepConv block that takes 16 channels. ` +
        `RepLens ${SCOPE}. ` +
        "--shape describes the blocks' inputs, not the image the whole model takes: its batch, height and width are used for every block's input, " +
        'each block with its own channels (model.2 16, model.3 16, model.4 16, model.8 40, model.9 24), and its channels must be those of the first block, model.2: [batch, 16, height, width]. ' +
        'Pass --shape 1,16,64,64',
    );
    // The shape it suggests runs: batch, height and width reach every block.
    const r = await checkParity(YOLOV7, { ...small, shape: [1, 16, 64, 64] });
    expect(r.pass).toBe(true);
    expect(r.shapes['model.8:input']).toEqual([1, 40, 64, 64]);
  }, 30_000);

  it('a chain that is not the whole model says where it starts, and --shape is that input', async () => {
    const r = await checkParity(path.join(MODELS, 'backbone_in_detector.pth'), small);
    expect(r.topology).toBe('chain');
    expect(r.scope).toBe("checks the 5 RepVGG blocks as one chain, from the input of backbone.stage0; the model's other layers are not in the file as a graph");
    expect(r.shapeUse).toBe(
      '--shape describes the input of backbone.stage0, the first block of the chain, not the image the whole model takes: [batch, 3, height, width]',
    );
  }, 30_000);

  it('an ONNX model run as it is against its blocks fused in place', async () => {
    const r = await checkParity(path.join(MODELS, 'repvgg_tiny_train_folded.onnx'), small);
    expect(r.scope).toBe('checks the whole ONNX graph, as it is and with its 7 blocks fused in place');
  }, 30_000);
});
