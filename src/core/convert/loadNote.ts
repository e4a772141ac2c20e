import * as path from 'node:path';
import type { ModuleInfo } from '../formats/modelFile';
import type { LoadNote } from '../../shared/reportData';
import { familyById, type FamilyId } from '../model/families';

/**
 * What a written deploy file is and the Python lines that load it (a LoadNote), for the family its
 * blocks belong to. Each family's lines follow its own source (the peers RepLens is tested against):
 * a deploy checkpoint is a flat state dict, and every family's own loader either builds the deploy
 * model (RepVGG `deploy=True`, MobileOne `inference_mode=True`, mmpretrain `backbone.deploy`) or
 * builds the train model and re-parameterizes it before loading (timm `reparameterize_model`,
 * YOLOv6 `switch_to_deploy`, YOLOv7 `fuse_repvgg_block`). The CLI prints it; the extension shows it.
 */

export interface LoadNoteInput {
  /** Families of the blocks fused (or passed through). */
  families: readonly FamilyId[];
  /** The architecture name RepLens recognised ('RepVGG-A0'), or 'custom'. */
  architecture: string;
  input: string;
  output: string;
  format: 'pth' | 'safetensors' | 'onnx';
  /** An ONNX output that RepLens built for a checkpoint (which has no graph of its own), rather than the input's graph rewritten. */
  graphBuilt?: boolean;
  /** The input held pickled module objects (torch.save(model), or a checkpoint whose slot holds one). */
  wholeModule: boolean;
  /** The output is that pickled model in deploy form (its class, and the checkpoint key holding it), not a state dict. */
  module?: { className: string; key?: string };
  /** The checkpoint key the weights were read from, when the input wrapped them in a dict. */
  weightsKey?: string;
  /** The checkpoint's other top-level keys (epoch, optimizer, …), not written. */
  otherKeys?: readonly string[];
  droppedPrefix?: string;
  /** The input's tensors (names and shapes), for the class count of a classifier head. */
  tensors?: readonly { name: string; shape: readonly number[] }[];
  /** The input's pickled module tree, for what it says about the model (a detector's class count). */
  modules?: readonly ModuleInfo[];
}

/** A Python string literal. */
function py(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The class count of the family's classifier head in the file, if it has one. */
function classesOf(family: FamilyId, input: LoadNoteInput): number | undefined {
  for (const module of familyById(family).classifier ?? []) {
    const w = input.tensors?.find((t) => (t.name === `${module}.weight` || t.name.endsWith(`.${module}.weight`)) && t.shape.length === 2);
    if (w) return w.shape[0];
  }
  return undefined;
}

/** A YOLO detector's class count, from its Detect module's `nc` in the pickled model. */
function detectorClasses(input: LoadNoteInput): number | undefined {
  const detect = input.modules?.find((m) => /Detect$/.test(m.className) && typeof m.attributes.nc === 'number');
  return detect?.attributes.nc as number | undefined;
}

const TIMM_REPVGG = new Set([
  'repvgg_a0',
  'repvgg_a1',
  'repvgg_a2',
  'repvgg_b0',
  'repvgg_b1',
  'repvgg_b1g4',
  'repvgg_b2',
  'repvgg_b2g4',
  'repvgg_b3',
  'repvgg_b3g4',
  'repvgg_d2se',
]);

interface FamilyLoad {
  /** How the family's own code loads it (a sentence). */
  how: string;
  imports: string[];
  /** The lines between the imports and the load_state_dict call. */
  build: string[];
  basis: string;
}

function familyLoad(family: FamilyId | undefined, input: LoadNoteInput): FamilyLoad {
  const recognised = input.architecture !== 'custom' ? input.architecture : undefined;
  const classes = family === undefined ? undefined : classesOf(family, input);
  const source = (where: string) =>
    (input.weightsKey !== undefined
      ? `torch.load(${py(input.input)}, map_location='cpu')[${py(input.weightsKey)}]`
      : `torch.load(${py(input.input)}, map_location='cpu')`) + where;
  switch (family) {
    case 'yolov7-repconv': {
      const nc = detectorClasses(input);
      const cfg = input.wholeModule
        ? `Model(${source('.yaml')})  # the cfg stored with the training checkpoint`
        : `Model('cfg/training/yolov7.yaml', nc=${nc ?? 80})  # the cfg and class count it was trained with`;
      return {
        how: "YOLOv7's attempt_load reads ckpt['ema'] or ckpt['model'] as a pickled Model, so it cannot load this file: build the Model from its cfg, fuse every RepConv as Model.fuse() does, then load the weights",
        imports: ['import torch', "from models.yolo import Model  # YOLOv7's own source", 'from models.common import RepConv'],
        build: [`model = ${cfg}`, 'for m in model.modules():', '    if isinstance(m, RepConv):', '        m.fuse_repvgg_block()'],
        basis: 'YOLOv7 models/yolo.py Model and Model.fuse(), models/common.py RepConv.fuse_repvgg_block()',
      };
    }
    case 'yolov6-repvgg':
    case 'yolov6-qarepvgg':
    case 'yolov6-qarepvgg-v2': {
      const mode = family === 'yolov6-repvgg' ? 'repvgg' : family === 'yolov6-qarepvgg' ? 'qarepvgg' : 'qarepvggv2';
      const nc = detectorClasses(input);
      return {
        how:
          "YOLOv6's load_checkpoint reads ckpt['ema'] or ckpt['model'] as a pickled model, so it cannot load this file: build the model from its config, " +
          `switch every RepVGG-style block to deploy (switch_to_deploy()${family === 'yolov6-repvgg' ? '' : ", which keeps the block's post-sum bn, as the file does"}), then load the weights`,
        imports: [
          'import torch',
          "from yolov6.models.yolo import build_model  # YOLOv6's own source",
          'from yolov6.utils.config import Config',
          'from yolov6.layers.common import RepVGGBlock  # QARepVGGBlock and QARepVGGBlockV2 are RepVGGBlocks too',
          'from yolov6.utils.torch_utils import fuse_model',
        ],
        build: [
          `cfg = Config.fromfile('configs/yolov6s.py')  # the config it was trained with (training_mode = '${mode}')`,
          `model = build_model(cfg, num_classes=${nc ?? 80}, device='cpu')`,
          'for m in [m for m in model.modules() if isinstance(m, RepVGGBlock)]:',
          "    fuse_model(m)  # folds the block's own conv+BN pairs, which switch_to_deploy expects (load_checkpoint(fuse=True) does it)",
          '    m.switch_to_deploy()',
        ],
        basis: 'YOLOv6 yolov6/models/yolo.py build_model, yolov6/layers/common.py RepVGGBlock.switch_to_deploy(), deploy/ONNX/export_onnx.py',
      };
    }
    case 'repvgg': {
      const named = recognised !== undefined && (classes === undefined || classes === 1000);
      return {
        how: 'Load it into the RepVGG built in deploy form (deploy=True)',
        imports: ['import torch', `from repvgg import ${named ? 'get_RepVGG_func_by_name' : 'RepVGG'}  # RepVGG's own repvgg.py`],
        build: named
          ? [`model = get_RepVGG_func_by_name(${py(recognised!)})(deploy=True)`]
          : [
              `model = RepVGG(num_blocks=[...], num_classes=${classes ?? 1000}, width_multiplier=[...], override_groups_map=None, deploy=True)  # the arguments it was trained with`,
            ],
        basis: 'RepVGG repvgg.py (RepVGG(deploy=True), repvgg_model_convert)',
      };
    }
    case 'timm-repvgg':
    case 'timm-mobileone': {
      const guess = recognised?.toLowerCase().replace(/-/g, '_');
      const name = family === 'timm-repvgg' && guess && TIMM_REPVGG.has(guess) ? py(guess) : family === 'timm-repvgg' ? "'repvgg_a2'" : "'mobileone_s0'";
      const known = family === 'timm-repvgg' && guess !== undefined && TIMM_REPVGG.has(guess);
      return {
        how: "Load it into the timm model re-parameterized by timm's reparameterize_model",
        imports: ['import torch', 'import timm', 'from timm.utils.model import reparameterize_model'],
        build: [
          `model = timm.create_model(${name}, num_classes=${classes ?? 1000})${known ? '' : '  # the model name it was trained as'}`,
          'model = reparameterize_model(model)',
        ],
        basis: 'timm timm/utils/model.py reparameterize_model, timm/models/byobnet.py RepVggBlock/MobileOneBlock.reparameterize()',
      };
    }
    case 'mobileone':
      return {
        how: 'Load it into the MobileOne built in inference mode (inference_mode=True)',
        imports: ['import torch', "from mobileone import mobileone  # ml-mobileone's own mobileone.py"],
        build: [`model = mobileone(num_classes=${classes ?? 1000}, inference_mode=True, variant='s0')  # the variant it was trained as`],
        basis: 'ml-mobileone mobileone.py (mobileone(inference_mode=True), reparameterize_model)',
      };
    case 'mmpretrain-repvgg': {
      const config =
        recognised !== undefined ? `configs/repvgg/${recognised.replace(/^RepVGG-/, 'repvgg-')}_8xb32_in1k.py` : 'configs/repvgg/repvgg-A0_8xb32_in1k.py';
      return {
        how: "Load it into the classifier built with its backbone in deploy form (mmpretrain's own converter writes the same state dict, under 'state_dict')",
        imports: ['import torch', 'from mmpretrain.apis import get_model'],
        build: [`model = get_model(${py(config)}, backbone=dict(deploy=True))${recognised !== undefined ? '' : '  # the config it was trained with'}`],
        basis: 'mmpretrain tools/model_converters/reparameterize_model.py, mmpretrain/models/backbones/repvgg.py (deploy=True)',
      };
    }
  }
  return {
    how: 'Load it into the model with every block in its deploy form',
    imports: ['import torch'],
    build: ['model = ...  # the model, every block in its deploy form'],
    basis: 'generic',
  };
}

/** How the family's own loader takes a deploy checkpoint in the input's whole-module form. */
function moduleLoad(family: FamilyId | undefined, input: LoadNoteInput, key: string | undefined): FamilyLoad {
  const out = py(input.output);
  switch (family) {
    case 'yolov7-repconv':
      return {
        how: "YOLOv7's attempt_load, detect.py and test.py take it as they take the input (--weights); Model.fuse() leaves its RepConvs, already fused, as they are",
        imports: ['import torch', "from models.experimental import attempt_load  # YOLOv7's own source"],
        build: [`model = attempt_load(${out}, map_location='cpu')`],
        basis: 'YOLOv7 models/experimental.py attempt_load, models/common.py RepConv (deploy form: rbr_reparam)',
      };
    case 'yolov6-repvgg':
    case 'yolov6-qarepvgg':
    case 'yolov6-qarepvgg-v2':
      return {
        how: "YOLOv6's load_checkpoint (used by its eval, infer and export tools) takes it as it takes the input; switch_to_deploy() leaves its blocks, already fused, as they are",
        imports: ['import torch', "from yolov6.utils.checkpoint import load_checkpoint  # YOLOv6's own source"],
        build: [`model = load_checkpoint(${out}, map_location='cpu')`],
        basis: 'YOLOv6 yolov6/utils/checkpoint.py load_checkpoint, yolov6/layers/common.py RepVGGBlock (deploy form: rbr_reparam)',
      };
  }
  return {
    how: "Load it as the input is loaded, with the model's classes importable: torch.load rebuilds the model, its blocks already in deploy form",
    imports: ["import torch  # and the modules that define the model's classes, as for the input"],
    build: [`model = torch.load(${out}, map_location='cpu', weights_only=False)${key !== undefined ? `[${py(key)}]` : ''}`],
    basis: 'torch.load of a pickled nn.Module',
  };
}

/** The load note for a written deploy file. */
export function loadNote(input: LoadNoteInput): LoadNote {
  const out = path.basename(input.output);
  if (input.format === 'onnx') {
    return {
      family: 'onnx',
      what: input.graphBuilt
        ? `${out} is an ONNX model (opset 13, float32) that RepLens built for the checkpoint's deploy form, each block one Conv, with batch, height and width left symbolic`
        : `${out} is an ONNX model: the input's graph with every fused block as one Conv, whose output keeps the block's tensor name`,
      how: input.graphBuilt ? 'It is the graph the parity check runs' : 'It runs as the input did',
      code: ['import onnxruntime as ort', `session = ort.InferenceSession(${py(input.output)})`],
      basis: 'ONNX Runtime',
    };
  }
  const families = [...new Set(input.families)];
  const family: LoadNote['family'] = families.length === 1 ? families[0] : 'mixed';
  const deploy = families.length === 1 ? familyById(families[0]).deploy : 'its deploy conv';
  if (input.module) {
    const key = input.module.key;
    const load = moduleLoad(families.length === 1 ? families[0] : undefined, input, key);
    const others = input.otherKeys?.filter((k) => k !== input.weightsKey) ?? [];
    const shown =
      others
        .slice(0, 4)
        .map((k) => `'${k}'`)
        .join(', ') + (others.length > 4 ? ', …' : '');
    return {
      family,
      what:
        `${out} is a checkpoint in the input's own form: ${key !== undefined ? `{'${key}': the pickled ${input.module.className}}` : `the pickled ${input.module.className}`}, ` +
        `every fused block in its deploy form (one conv with bias, ${deploy}), every other object as it was` +
        (input.weightsKey !== undefined && key !== input.weightsKey
          ? `; the weights read from '${input.weightsKey}' are under '${key}', the key every loader reads`
          : '') +
        (others.length > 0 ? `; the input checkpoint's other entries (${shown}) were not written` : ''),
      how: load.how,
      code: [...load.imports, ...load.build, 'model.eval()'],
      basis: load.basis,
    };
  }
  const load = familyLoad(families.length === 1 ? families[0] : undefined, input);
  const notWritten: string[] = [];
  if (input.wholeModule) notWritten.push(`the pickled module objects${input.weightsKey !== undefined ? ` of '${input.weightsKey}'` : ''} were not written`);
  if (input.otherKeys && input.otherKeys.length > 0) {
    const shown =
      input.otherKeys
        .slice(0, 4)
        .map((k) => `'${k}'`)
        .join(', ') + (input.otherKeys.length > 4 ? ', …' : '');
    notWritten.push(`nor the checkpoint's other entries (${shown})`);
  }
  const prefix = input.droppedPrefix ? `; the '${input.droppedPrefix}' prefix was dropped, so it loads into the bare model` : '';
  const what =
    `${out} is a flat state dict of the deploy model (tensor name → tensor${input.format === 'safetensors' ? ', safetensors' : ''}): ` +
    `every fused block is one conv with bias (${deploy}), every other tensor is as it was${prefix}` +
    (notWritten.length > 0 ? `; ${notWritten.join(', ')}` : '');
  const read = input.format === 'safetensors' ? `load_file(${py(input.output)})` : `torch.load(${py(input.output)}, map_location='cpu')`;
  return {
    family,
    what,
    how: load.how,
    code: [
      ...load.imports,
      ...(input.format === 'safetensors' ? ['from safetensors.torch import load_file'] : []),
      ...load.build,
      `model.load_state_dict(${read}, strict=True)`,
      'model.eval()',
    ],
    basis: load.basis,
  };
}
