import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ModuleInfo } from '../../../src/core/formats/modelFile';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { planTopology, type TensorInfo } from '../../../src/core/graph/topology';
import { layerWiring, sourcesOf, wiringOf } from '../../../src/core/graph/yoloWiring';
import { buildStructure } from '../../../src/core/model/buildStructure';
import type { Block, ModelStructure } from '../../../src/core/model/structure';

/*
 * A state dict has no graph; a pickled YOLO model says in each layer's `f` where it reads from.
 * Topology must not chain blocks whose `f` says otherwise (YOLOv7's three RepConv heads, fed from
 * layers 75, 88 and 101, line up in channels and in tensor order), and still chain real chains.
 */

const REPCONV = 'models.common.RepConv';

/** A YOLOv7 RepConv block as the structure has it: its four conv/BN tensor groups, in file order. */
function repconv(name: string, inChannels: number, outChannels: number): Block {
  const tensors = ['rbr_dense.0.weight', 'rbr_dense.1.weight', 'rbr_dense.1.bias', 'rbr_1x1.0.weight', 'rbr_1x1.1.weight', 'rbr_1x1.1.bias'].map(
    (t) => `${name}.${t}`,
  );
  return { name, family: 'yolov7-repconv', inChannels, outChannels, tensors } as unknown as Block;
}

function structureOf(blocks: Block[]): ModelStructure {
  return {
    format: 'torch-zip',
    family: 'yolov7-repconv',
    architecture: 'custom',
    form: 'train',
    stages: [{ name: 'model', blocks }],
    other: [],
    params: { total: 0, afterFusion: 0 },
    warnings: [],
  };
}

/** The tensors of a file: some layers before, the blocks (with `between` tensors after the block named), the Detect head. */
function tensorsOf(blocks: Block[], between: Record<string, string> = {}): TensorInfo[] {
  const t = (name: string): TensorInfo => ({ name, dtype: 'float32', shape: [1] });
  return [
    t('model.0.conv.weight'),
    ...blocks.flatMap((b) => [...b.tensors.map(t), ...(between[b.name] ? [t(between[b.name])] : [])]),
    t('model.105.m.0.weight'),
    t('model.105.m.0.bias'),
  ];
}

function yoloModule(path: string, i: number, f: unknown, className = REPCONV): ModuleInfo {
  return { path, className, attributes: { training: false, deploy: false, i, f, type: className, np: 0 } };
}

/** YOLOv7's heads (cfg/training/yolov7.yaml layers 102-104): channels line up, tensors are adjacent, inputs are not. */
const HEADS = [repconv('model.102', 128, 256), repconv('model.103', 256, 512), repconv('model.104', 512, 1024)];
const HEAD_MODULES = [
  { path: '', className: 'models.yolo.Model', attributes: { yaml_file: 'yolov7.yaml' } },
  yoloModule('model', -1, undefined, 'torch.nn.modules.container.Sequential'),
  yoloModule('model.101', 101, -1, 'models.common.Conv'),
  yoloModule('model.102', 102, 75),
  yoloModule('model.103', 103, 88),
  yoloModule('model.104', 104, 101),
  yoloModule('model.105', 105, [102, 103, 104], 'models.yolo.IDetect'),
];

describe('planTopology with the YOLO wiring of a pickled model', () => {
  it('parallel heads (f = 75, 88, 101) are run block by block, with a reason naming the blocks and their f', () => {
    const plan = planTopology(tensorsOf(HEADS), structureOf(HEADS), HEAD_MODULES);
    expect(plan.topology).toBe('blockwise');
    expect(plan.reason).toBe(
      "each block is run on its own input: the module tree says which layer each block reads (YOLO's from-index f): " +
        'model.102 f = 75, model.103 f = 88, model.104 f = 101; model.103 (layer 103) reads layer 88, not model.102 (layer 102)',
    );
  });

  it('the same heads without a module tree (a state dict) keep the tensor-adjacency rule, which sees a chain', () => {
    expect(planTopology(tensorsOf(HEADS), structureOf(HEADS)).topology).toBe('chain');
    expect(planTopology(tensorsOf(HEADS), structureOf(HEADS), []).topology).toBe('chain');
  });

  it('a real chain (each block f = -1, right after the one before) stays a chain, and says the module tree agrees', () => {
    const blocks = [repconv('model.2', 16, 16), repconv('model.3', 16, 16), repconv('model.4', 16, 24)];
    const modules = [yoloModule('model.2', 2, -1), yoloModule('model.3', 3, -1), yoloModule('model.4', 4, -1)];
    const plan = planTopology(tensorsOf(blocks), structureOf(blocks), modules);
    expect(plan.topology).toBe('chain');
    expect(plan.reason).toMatch(/^3 blocks in a chain \(the module tree says each reads the one before it: YOLO's f\); 3 tensors outside the blocks/);
  });

  it("f = the earlier block's i is a chain too; f = -2 resolves to two layers back", () => {
    const blocks = [repconv('model.2', 16, 16), repconv('model.4', 16, 16)];
    // model.3 has no tensors (an Upsample, say) and does not feed model.4.
    expect(planTopology(tensorsOf(blocks), structureOf(blocks), [yoloModule('model.2', 2, -1), yoloModule('model.4', 4, 2)]).topology).toBe('chain');
    expect(planTopology(tensorsOf(blocks), structureOf(blocks), [yoloModule('model.2', 2, -1), yoloModule('model.4', 4, -2)]).topology).toBe('chain');
  });

  it('f = -1 with a layer between the blocks (a tensor-less Concat at 7) is not a chain', () => {
    const blocks = [repconv('model.4', 16, 16), repconv('model.8', 16, 16)];
    const plan = planTopology(tensorsOf(blocks), structureOf(blocks), [yoloModule('model.4', 4, -1), yoloModule('model.8', 8, -1)]);
    expect(plan.topology).toBe('blockwise');
    expect(plan.reason).toContain('model.4 f = -1, model.8 f = -1; model.8 (layer 8) reads layer 7, not model.4 (layer 4)');
  });

  it('a block that reads several layers (f a list) is not chained', () => {
    const blocks = [repconv('model.2', 16, 16), repconv('model.3', 16, 16)];
    const plan = planTopology(tensorsOf(blocks), structureOf(blocks), [yoloModule('model.2', 2, -1), yoloModule('model.3', 3, [-1, 0])]);
    expect(plan.topology).toBe('blockwise');
    expect(plan.reason).toContain('model.3 f = [-1, 0]; model.3 (layer 3) reads layers 2, 0, not model.2 (layer 2)');
  });

  it('the wiring only vetoes: a chain it allows is still refused when a tensor lies between the blocks', () => {
    const blocks = [repconv('model.2', 16, 16), repconv('model.4', 16, 16)];
    const plan = planTopology(tensorsOf(blocks, { 'model.2': 'model.3.conv.weight' }), structureOf(blocks), [
      yoloModule('model.2', 2, -1),
      yoloModule('model.4', 4, 2),
    ]);
    expect(plan.topology).toBe('blockwise');
    expect(plan.reason).toContain("'model.3.conv.weight' lies between model.2 and model.4");
  });

  it('wiring on only some blocks, or a module tree of another kind, leaves the tensor rule alone', () => {
    const partial = [yoloModule('model.102', 102, 75), yoloModule('model.103', 103, 88)];
    expect(planTopology(tensorsOf(HEADS), structureOf(HEADS), partial).topology).toBe('chain');
    const repvggTree = HEADS.map((b) => ({ path: b.name, className: 'repvgg.RepVGGBlock', attributes: { deploy: false } }));
    expect(planTopology(tensorsOf(HEADS), structureOf(HEADS), repvggTree).topology).toBe('chain');
  });
});

describe('yoloWiring', () => {
  it('reads f and i only when both are well formed', () => {
    expect(layerWiring({ i: 102, f: 75 })).toEqual({ index: 102, from: 75 });
    expect(layerWiring({ i: 105, f: [102, 103, 104] })).toEqual({ index: 105, from: [102, 103, 104] });
    expect(layerWiring({ i: 3 })).toBeUndefined();
    expect(layerWiring({ i: 3, f: 'x' })).toBeUndefined();
    expect(layerWiring({ i: -1, f: -1 })).toBeUndefined();
    expect(layerWiring({ i: 3, f: [] })).toBeUndefined();
    expect(layerWiring({ i: 3.5, f: -1 })).toBeUndefined();
  });

  it('resolves negative f relative to the layer, as YOLO indexes its saved outputs', () => {
    expect(sourcesOf({ index: 10, from: -1 })).toEqual([9]);
    expect(sourcesOf({ index: 10, from: [-1, -3, 4] })).toEqual([9, 7, 4]);
    expect(wiringOf(['model.102'], HEAD_MODULES)?.get('model.102')).toEqual({ index: 102, from: 75 });
    expect(wiringOf(['model.102', 'model.999'], HEAD_MODULES)).toBeUndefined();
    expect(wiringOf(['model.102'], undefined)).toBeUndefined();
  });
});

describe("a real YOLOv7 training checkpoint (made by YOLOv7's own code)", () => {
  it("its modules' f/i reach planTopology and name where the chain breaks", async () => {
    const file = await openModelFile(path.join(__dirname, '..', '..', 'fixtures', 'peers', 'yolov7', 'tiny_repconv_last.pt'));
    try {
      const structure = buildStructure(file);
      const plan = planTopology(file.tensors, structure, file.modules);
      expect(plan.topology).toBe('blockwise');
      // Layers 2, 3, 4 follow one another (f = -1); layer 8 reads the Concat at 7, layer 9 reads layer 5.
      expect(plan.reason).toBe(
        "each block is run on its own input: the module tree says which layer each block reads (YOLO's from-index f): " +
          'model.2 f = -1, model.3 f = -1, model.4 f = -1, model.8 f = -1, model.9 f = 5; model.8 (layer 8) reads layer 7, not model.4 (layer 4)',
      );
    } finally {
      await file.close();
    }
  });
});
