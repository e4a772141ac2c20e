import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertFile } from '../../../src/core/convert/convert';
import { loadNote, type LoadNoteInput } from '../../../src/core/convert/loadNote';
import { FAMILIES, type FamilyId } from '../../../src/core/model/families';
import { cliUnderTest } from '../parity/bundle';

/*
 * A deploy checkpoint is a flat state dict: a family's own loader for training checkpoints
 * (YOLOv7's attempt_load, YOLOv6's load_checkpoint) cannot read it, and nothing else tells the
 * user how. Each note's lines were run against the family's own source (test/fixtures/peers/.src):
 * they load the file RepLens wrote with load_state_dict(strict=True).
 */

const FIXTURES = path.join(__dirname, '..', '..', 'fixtures');
const YOLOV7 = path.join(FIXTURES, 'peers', 'yolov7', 'tiny_repconv_last.pt');

const base = (family: FamilyId, more: Partial<LoadNoteInput> = {}): LoadNoteInput => ({
  families: [family, family],
  architecture: 'custom',
  input: 'train.pth',
  output: 'out/train.deploy.pth',
  format: 'pth',
  wholeModule: false,
  ...more,
});

const LOAD = "model.load_state_dict(torch.load('out/train.deploy.pth', map_location='cpu'), strict=True)";

describe('the load note of a deploy checkpoint, per family', () => {
  it('every family RepLens knows has lines of its own', () => {
    for (const f of FAMILIES) {
      const note = loadNote(base(f.id));
      expect(note.family, f.id).toBe(f.id);
      expect(note.basis, f.id).not.toBe('generic');
      expect(note.what, f.id).toBe(
        `train.deploy.pth is a flat state dict of the deploy model (tensor name → tensor): every fused block is one conv with bias (${f.deploy}), every other tensor is as it was`,
      );
      expect(note.code.slice(-2), f.id).toEqual([LOAD, 'model.eval()']);
    }
  });

  it('yolov7-repconv, from a whole-module training checkpoint: says the modules were not written, and builds Model(cfg), fuses every RepConv, loads strictly', () => {
    const note = loadNote(
      base('yolov7-repconv', {
        input: 'best.pt',
        wholeModule: true,
        weightsKey: 'ema',
        otherKeys: ['epoch', 'best_fitness', 'model', 'optimizer', 'wandb_id'],
      }),
    );
    expect(note.what).toBe(
      'train.deploy.pth is a flat state dict of the deploy model (tensor name → tensor): every fused block is one conv with bias (rbr_reparam), every other tensor is as it was; ' +
        "the pickled module objects of 'ema' were not written, nor the checkpoint's other entries ('epoch', 'best_fitness', 'model', 'optimizer', …)",
    );
    expect(note.how).toBe(
      "YOLOv7's attempt_load reads ckpt['ema'] or ckpt['model'] as a pickled Model, so it cannot load this file: build the Model from its cfg, fuse every RepConv as Model.fuse() does, then load the weights",
    );
    expect(note.code).toEqual([
      'import torch',
      "from models.yolo import Model  # YOLOv7's own source",
      'from models.common import RepConv',
      "model = Model(torch.load('best.pt', map_location='cpu')['ema'].yaml)  # the cfg stored with the training checkpoint",
      'for m in model.modules():',
      '    if isinstance(m, RepConv):',
      '        m.fuse_repvgg_block()',
      LOAD,
      'model.eval()',
    ]);
  });

  it("yolov7-repconv from a state dict: the cfg and class count are the user's", () => {
    expect(loadNote(base('yolov7-repconv')).code[3]).toBe("model = Model('cfg/training/yolov7.yaml', nc=80)  # the cfg and class count it was trained with");
  });

  it.each([
    ['yolov6-repvgg', 'repvgg'],
    ['yolov6-qarepvgg', 'qarepvgg'],
    ['yolov6-qarepvgg-v2', 'qarepvggv2'],
  ] as const)('%s: build_model, then fuse_model + switch_to_deploy on every RepVGGBlock, then a strict load', (family, mode) => {
    const modules = [{ path: 'detect', className: 'yolov6.models.effidehead.Detect', attributes: { nc: 3 } }];
    const note = loadNote(base(family, { wholeModule: true, weightsKey: 'ema', modules }));
    expect(note.how).toMatch(/^YOLOv6's load_checkpoint reads ckpt\['ema'\] or ckpt\['model'\] as a pickled model, so it cannot load this file/);
    expect(note.code).toEqual([
      'import torch',
      "from yolov6.models.yolo import build_model  # YOLOv6's own source",
      'from yolov6.utils.config import Config',
      'from yolov6.layers.common import RepVGGBlock  # QARepVGGBlock and QARepVGGBlockV2 are RepVGGBlocks too',
      'from yolov6.utils.torch_utils import fuse_model',
      `cfg = Config.fromfile('configs/yolov6s.py')  # the config it was trained with (training_mode = '${mode}')`,
      "model = build_model(cfg, num_classes=3, device='cpu')",
      'for m in [m for m in model.modules() if isinstance(m, RepVGGBlock)]:',
      "    fuse_model(m)  # folds the block's own conv+BN pairs, which switch_to_deploy expects (load_checkpoint(fuse=True) does it)",
      '    m.switch_to_deploy()',
      LOAD,
      'model.eval()',
    ]);
    expect(note.how.includes('post-sum bn')).toBe(family !== 'yolov6-repvgg');
  });

  it('repvgg: the named constructor with deploy=True for a recognised architecture, RepVGG(..., deploy=True) otherwise', () => {
    const head = [{ name: 'linear.weight', shape: [1000, 1280] }];
    expect(loadNote(base('repvgg', { architecture: 'RepVGG-A0', tensors: head })).code.slice(1, 3)).toEqual([
      "from repvgg import get_RepVGG_func_by_name  # RepVGG's own repvgg.py",
      "model = get_RepVGG_func_by_name('RepVGG-A0')(deploy=True)",
    ]);
    // The named constructors fix 1000 classes: another head needs RepVGG(...).
    const ten = loadNote(base('repvgg', { architecture: 'RepVGG-A0', tensors: [{ name: 'linear.weight', shape: [10, 1280] }] }));
    expect(ten.code[2]).toBe(
      'model = RepVGG(num_blocks=[...], num_classes=10, width_multiplier=[...], override_groups_map=None, deploy=True)  # the arguments it was trained with',
    );
  });

  it('timm: create_model, then reparameterize_model', () => {
    const note = loadNote(base('timm-repvgg', { architecture: 'RepVGG-A0', tensors: [{ name: 'head.fc.weight', shape: [10, 1280] }] }));
    expect(note.code.slice(0, 5)).toEqual([
      'import torch',
      'import timm',
      'from timm.utils.model import reparameterize_model',
      "model = timm.create_model('repvgg_a0', num_classes=10)",
      'model = reparameterize_model(model)',
    ]);
    expect(loadNote(base('timm-mobileone')).code[3]).toBe("model = timm.create_model('mobileone_s0', num_classes=1000)  # the model name it was trained as");
  });

  it('mobileone: inference_mode=True; mmpretrain: the backbone in deploy form', () => {
    expect(loadNote(base('mobileone', { tensors: [{ name: 'linear.weight', shape: [10, 64] }] })).code[2]).toBe(
      "model = mobileone(num_classes=10, inference_mode=True, variant='s0')  # the variant it was trained as",
    );
    expect(loadNote(base('mmpretrain-repvgg', { architecture: 'RepVGG-B1g4' })).code.slice(1, 3)).toEqual([
      'from mmpretrain.apis import get_model',
      "model = get_model('configs/repvgg/repvgg-B1g4_8xb32_in1k.py', backbone=dict(deploy=True))",
    ]);
  });

  it('safetensors output, a dropped DataParallel prefix, an ONNX output, mixed families', () => {
    const st = loadNote(base('repvgg', { format: 'safetensors', output: 'a.safetensors', droppedPrefix: 'module.' }));
    expect(st.what).toContain('(tensor name → tensor, safetensors)');
    expect(st.what).toContain("the 'module.' prefix was dropped, so it loads into the bare model");
    expect(st.code).toContain('from safetensors.torch import load_file');
    expect(st.code).toContain("model.load_state_dict(load_file('a.safetensors'), strict=True)");
    const onnx = loadNote(base('repvgg', { format: 'onnx', output: 'm.deploy.onnx' }));
    expect(onnx).toMatchObject({ family: 'onnx', code: ['import onnxruntime as ort', "session = ort.InferenceSession('m.deploy.onnx')"] });
    const mixed = loadNote({ ...base('repvgg'), families: ['repvgg', 'mobileone'] });
    expect(mixed).toMatchObject({ family: 'mixed', basis: 'generic' });
  });
});

describe('convertFile returns the note', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'replens-loadnote-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a YOLOv7 training checkpoint (YOLOv7's own train.py): whole module, 'ema', written back as YOLOv7's pickled Model", async () => {
    const output = path.join(dir, 'yolo-module.deploy.pt');
    const r = await convertFile(YOLOV7, { output });
    expect(r.module).toEqual({ className: 'models.yolo.Model', key: 'model' });
    expect(r.load.family).toBe('yolov7-repconv');
    expect(r.load.what).toBe(
      "yolo-module.deploy.pt is a checkpoint in the input's own form: {'model': the pickled models.yolo.Model}, every fused block in its deploy form (one conv with bias, rbr_reparam), every other object as it was; " +
        "the weights read from 'ema' are under 'model', the key every loader reads; the input checkpoint's other entries ('epoch', 'best_fitness', 'training_results', 'model', …) were not written",
    );
    expect(r.load.code).toEqual([
      'import torch',
      "from models.experimental import attempt_load  # YOLOv7's own source",
      `model = attempt_load('${output}', map_location='cpu')`,
      'model.eval()',
    ]);
  });

  it("a YOLOv7 training checkpoint (YOLOv7's own train.py): whole module, 'ema', written as a state dict", async () => {
    const output = path.join(dir, 'yolo.deploy.pt');
    const r = await convertFile(YOLOV7, { output, stateDict: true });
    expect(r.module).toBeUndefined();
    expect(r.load.family).toBe('yolov7-repconv');
    expect(r.load.what).toContain(
      "the pickled module objects of 'ema' were not written, nor the checkpoint's other entries ('epoch', 'best_fitness', 'training_results', 'model', …)",
    );
    expect(r.load.code).toContain(`model = Model(torch.load('${YOLOV7}', map_location='cpu')['ema'].yaml)  # the cfg stored with the training checkpoint`);
    expect(r.load.code).toContain(`model.load_state_dict(torch.load('${output}', map_location='cpu'), strict=True)`);
  });

  it('a RepVGG state dict: nothing was left out', async () => {
    const r = await convertFile(path.join(FIXTURES, 'models', 'repvgg_tiny_train.pth'), { output: path.join(dir, 'tiny.deploy.pth') });
    expect(r.load.family).toBe('repvgg');
    expect(r.load.what).not.toContain('not written');
    expect(r.load.code[2]).toBe(
      'model = RepVGG(num_blocks=[...], num_classes=10, width_multiplier=[...], override_groups_map=None, deploy=True)  # the arguments it was trained with',
    );
  });

  it("a checkpoint written as ONNX: the graph RepLens built, not the input's", async () => {
    const output = path.join(dir, 'tiny.deploy.onnx');
    const r = await convertFile(path.join(FIXTURES, 'models', 'repvgg_tiny_train.pth'), { output, format: 'onnx' });
    expect(r.load).toMatchObject({
      family: 'onnx',
      how: 'It is the graph the parity check runs',
      code: ['import onnxruntime as ort', `session = ort.InferenceSession('${output}')`],
    });
    expect(r.load.what).toBe(
      "tiny.deploy.onnx is an ONNX model (opset 13, float32) that RepLens built for the checkpoint's deploy form, each block one Conv, with batch, height and width left symbolic",
    );
    const rewritten = await convertFile(path.join(FIXTURES, 'models', 'repvgg_tiny_train.onnx'), { output: path.join(dir, 'graph.deploy.onnx') });
    expect(rewritten.load.what).toContain("the input's graph with every fused block as one Conv");
  });
});

describe('replens convert prints the note', () => {
  const cli = cliUnderTest('replens-loadnote-cli-');
  const replens = (...args: string[]) => cli.run(args);

  it("in the text (--state-dict): what the file is, the family's sentence, then the lines, indented to copy", async () => {
    const output = path.join(cli.dir, 'best.deploy.pt');
    const { code, stdout } = await replens('convert', YOLOV7, '-o', output, '--state-dict');
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    const at = lines.findIndex((l) => l.startsWith('load: '));
    expect(lines[at]).toBe(
      'load: best.deploy.pt is a flat state dict of the deploy model (tensor name → tensor): every fused block is one conv with bias (rbr_reparam), every other tensor is as it was; ' +
        "the pickled module objects of 'ema' were not written, nor the checkpoint's other entries ('epoch', 'best_fitness', 'training_results', 'model', …).",
    );
    expect(lines[at + 1]).toMatch(/^ {2}YOLOv7's attempt_load reads ckpt\['ema'\] or ckpt\['model'\] as a pickled Model, so it cannot load this file: .*:$/);
    expect(lines.slice(at + 2)).toEqual([
      '    import torch',
      "    from models.yolo import Model  # YOLOv7's own source",
      '    from models.common import RepConv',
      `    model = Model(torch.load('${YOLOV7}', map_location='cpu')['ema'].yaml)  # the cfg stored with the training checkpoint`,
      '    for m in model.modules():',
      '        if isinstance(m, RepConv):',
      '            m.fuse_repvgg_block()',
      `    model.load_state_dict(torch.load('${output}', map_location='cpu'), strict=True)`,
      '    model.eval()',
    ]);
  }, 30_000);

  it('in the JSON: the note object', async () => {
    const output = path.join(cli.dir, 'json.deploy.pt');
    const { code, stdout } = await replens('convert', YOLOV7, '-o', output, '--json');
    expect(code).toBe(0);
    const { load, module } = JSON.parse(stdout);
    expect(module).toEqual({ className: 'models.yolo.Model', key: 'model' });
    expect(load).toMatchObject({ family: 'yolov7-repconv', basis: expect.stringContaining('attempt_load') });
    expect(load.code).toContain(`model = attempt_load('${output}', map_location='cpu')`);
  }, 30_000);
});
