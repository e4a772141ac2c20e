import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { inspectFile } from '../../../src/core/inspect';
import { afterAll, describe, expect, it } from 'vitest';
import { convertFile } from '../../../src/core/convert/convert';
import { encodeOnnxModel } from '../../../src/core/formats/onnxCodec';
import type { OnnxModel } from '../../../src/core/formats/onnxModel';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { fuseOnnxModel } from '../../../src/core/fuse/onnxFusion';
import { buildStructure } from '../../../src/core/model/buildStructure';
import { allBlocks, type Block, type ModelStructure } from '../../../src/core/model/structure';
import { GraphBuilder, onnxChecker, randomInput, relativeError, runModel, valueInfo } from './onnxTestKit';

/*
 * Each pattern an exporter writes for a re-parameterizable block, built as a small graph: the
 * blocks found (stride, groups, branches, post BN), the graph after fusion (one Conv per block,
 * nothing of the block left behind, the onnx checker content) and the fused model's output in
 * ONNX Runtime against the original's.
 */

const scratch = mkdtempSync(path.join(tmpdir(), 'replens-onnx-patterns-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const C = 4;
const X = { name: 'x', dims: [1, C, 8, 8] };
const bnEps = 1e-3;

interface Expected {
  stride: number;
  groups: number;
  kernel: number;
  /** Branch roles in the block's order, identity written 'identity' (BN) or 'bare'. */
  branches: string[];
  postBn?: boolean;
}

const shape = (b: Block): Expected => ({
  stride: b.stride!,
  groups: b.groups,
  kernel: b.kernel,
  branches: b.branches.map((x) => (x.role === 'identity' && !x.bn ? 'bare' : x.role)),
  ...(b.postBn ? { postBn: true } : {}),
});

let files = 0;
async function write(model: OnnxModel): Promise<string> {
  const file = path.join(scratch, `m${files++}.onnx`);
  writeFileSync(file, await encodeOnnxModel(model));
  return file;
}

const structureOf = async (file: string): Promise<ModelStructure> => (await inspectFile(file)).structure;

const ops = (model: OnnxModel) => model.graph!.node.map((n) => n.opType!);
const count = (model: OnnxModel, op: string) => ops(model).filter((o) => o === op).length;

/**
 * Finds the blocks of `model`, fuses them and runs both models: the blocks are `expected`, each is
 * one Conv that writes its output tensor, the fused graph has `convsAfter` Convs and only `opsLeft`
 * besides, passes the onnx checker, and computes the original's output.
 */
async function fusesTo(model: OnnxModel, expected: Expected[], after: { convs?: number; opsLeft?: string[] } = {}) {
  const file = await write(model);
  const m = await openModelFile(file);
  try {
    const structure = buildStructure(m);
    const blocks = allBlocks(structure);
    expect(blocks.map(shape)).toEqual(expected);
    expect(structure.warnings).toEqual([]);
    expect(blocks.every((b) => b.onnx?.fusible)).toBe(true);
    const fusion = await fuseOnnxModel(m, structure);
    expect(fusion.fused).toHaveLength(expected.length);
    const g = fusion.model.graph!;
    for (const b of blocks) {
      const producers = g.node.filter((n) => n.output.includes(b.onnx!.output));
      expect(producers.map((n) => [n.opType, n.input[0]])).toEqual([['Conv', b.onnx!.input]]);
    }
    expect(count(fusion.model, 'Conv')).toBe(after.convs ?? expected.length);
    expect(ops(fusion.model).filter((o) => o !== 'Conv')).toEqual(after.opsLeft ?? ['Relu']);
    // No initializer is left without a reader.
    const read = new Set(g.node.flatMap((n) => n.input));
    expect(g.initializer.map((t) => t.name).filter((n) => !read.has(n!))).toEqual([]);
    const out = file.replace(/\.onnx$/, '.fused.onnx');
    writeFileSync(out, await encodeOnnxModel(fusion.model));
    expect(onnxChecker(out)).toBe('');
    const input = { ...X, dims: [...X.dims], data: randomInput(X.dims, 17) };
    const y = model.graph!.output[0].name!;
    const [a, b] = [(await runModel(file, input)).get(y)!, (await runModel(out, input)).get(y)!];
    expect(relativeError(a, b).relative).toBeLessThanOrEqual(1e-5);
    return { structure, fusion };
  } finally {
    await m.close();
  }
}

function model(g: GraphBuilder, y: string, channels = C, spatial = 8): OnnxModel {
  return g.model(valueInfo('x', X.dims), y, [1, channels, spatial, spatial]);
}

const convBn = (g: GraphBuilder, x: string, k: number, opts: { out?: number; stride?: number; group?: number; name?: string } = {}) =>
  g.bn(g.conv(x, { out: opts.out ?? C, in: C, k, stride: opts.stride, group: opts.group, name: opts.name }), opts.out ?? C, undefined, bnEps);

describe('sums in any form', () => {
  it('MobileOne: three k×k branches, a 1×1 scale and an identity BN, summed by Adds in a mixed association', async () => {
    const g = new GraphBuilder(1);
    const [a, b, c] = [convBn(g, 'x', 3), convBn(g, 'x', 3), convBn(g, 'x', 3)];
    const s = g.node('Add', [g.node('Add', [a, g.node('Add', [b, c])]), g.node('Add', [convBn(g, 'x', 1), g.bn('x', C)])]);
    await fusesTo(model(g, g.node('Relu', [s])), [{ stride: 1, groups: 1, kernel: 3, branches: ['dense', 'dense', 'dense', 'oneByOne', 'identity'] }]);
  });

  it('a Sum node of four branches with stride 2', async () => {
    const g = new GraphBuilder(2);
    const s = g.node('Sum', [
      convBn(g, 'x', 3, { stride: 2 }),
      convBn(g, 'x', 1, { stride: 2 }),
      convBn(g, 'x', 3, { stride: 2 }),
      convBn(g, 'x', 3, { stride: 2 }),
    ]);
    await fusesTo(model(g, g.node('Relu', [s]), C, 4), [{ stride: 2, groups: 1, kernel: 3, branches: ['dense', 'dense', 'dense', 'oneByOne'] }]);
  });

  it('depthwise (groups = channels) with an identity BN', async () => {
    const g = new GraphBuilder(3);
    const s = g.node('Add', [g.bn('x', C), g.node('Add', [convBn(g, 'x', 3, { group: C }), convBn(g, 'x', 1, { group: C })])]);
    await fusesTo(model(g, g.node('Relu', [s])), [{ stride: 1, groups: C, kernel: 3, branches: ['dense', 'oneByOne', 'identity'] }]);
  });

  it('pointwise (k = 1): two 1×1 branches and an identity BN, then a second pointwise block of other width', async () => {
    const g = new GraphBuilder(4);
    const a = g.node('Relu', [g.node('Add', [g.node('Add', [convBn(g, 'x', 1), convBn(g, 'x', 1)]), g.bn('x', C)])]);
    const wide = (x: string) => g.bn(g.conv(x, { out: 2 * C, in: C, k: 1 }), 2 * C, undefined, bnEps);
    const b = g.node('Relu', [g.node('Add', [wide(a), wide(a)])]);
    await fusesTo(
      model(g, b, 2 * C),
      [
        { stride: 1, groups: 1, kernel: 1, branches: ['dense', 'dense', 'identity'] },
        { stride: 1, groups: 1, kernel: 1, branches: ['dense', 'dense'] },
      ],
      { convs: 2, opsLeft: ['Relu', 'Relu'] },
    );
  });
});

describe("Add(x, 0) as torch writes it for MobileOne's `out = 0; out += branch(x)`", () => {
  it('a Constant 0 on either side of the Add, in a block of two branches and before a lone branch', async () => {
    const g = new GraphBuilder(5);
    // scale + 0, then + conv (MobileOne with no skip): 0 on the right.
    const a = g.node('Relu', [g.node('Add', [g.node('Add', [convBn(g, 'x', 1), g.constant([], [0])]), convBn(g, 'x', 3)])]);
    // 0 + conv alone (a pointwise block without skip): 0 on the left.
    const b = g.node('Relu', [g.node('Add', [g.constant([], [0]), convBn(g, a, 1)])]);
    const { fusion } = await fusesTo(
      model(g, b),
      [
        { stride: 1, groups: 1, kernel: 3, branches: ['dense', 'oneByOne'] },
        { stride: 1, groups: 1, kernel: 1, branches: ['dense'] },
      ],
      { convs: 2, opsLeft: ['Relu', 'Relu'] },
    );
    expect(count(fusion.model, 'Constant')).toBe(0);
  });

  it("an initializer 0 of shape [1, C, 1, 1], and timm's two Adds of 0 in a row", async () => {
    const g = new GraphBuilder(6);
    const zeros = g.constantInitializer('zeros', [1, C, 1, 1], new Array(C).fill(0));
    const a = g.node('Relu', [g.node('Add', [g.node('Add', [convBn(g, 'x', 3), convBn(g, 'x', 1)]), zeros])]);
    const b = g.node('Relu', [g.node('Add', [g.node('Add', [convBn(g, a, 3), g.constant([1], [0])]), g.constant([1, 1, 1, 1], [0])])]);
    const { fusion } = await fusesTo(
      model(g, b),
      [
        { stride: 1, groups: 1, kernel: 3, branches: ['dense', 'oneByOne'] },
        { stride: 1, groups: 1, kernel: 3, branches: ['dense'] },
      ],
      { convs: 2, opsLeft: ['Relu', 'Relu'] },
    );
    expect(fusion.model.graph!.initializer.map((t) => t.name)).not.toContain('zeros');
  });

  it('one Constant 0 that several blocks read goes once the last of them is fused', async () => {
    const g = new GraphBuilder(7);
    const zero = g.constant([], [0]);
    const a = g.node('Relu', [g.node('Add', [zero, convBn(g, 'x', 3)])]);
    const b = g.node('Relu', [g.node('Add', [convBn(g, a, 3), zero])]);
    await fusesTo(
      model(g, b),
      [
        { stride: 1, groups: 1, kernel: 3, branches: ['dense'] },
        { stride: 1, groups: 1, kernel: 3, branches: ['dense'] },
      ],
      { convs: 2, opsLeft: ['Relu', 'Relu'] },
    );
  });

  it('a constant that is not 0 is a summand, not a no-op: the sum is no block, the Add inside it is', async () => {
    const g = new GraphBuilder(8);
    const s = g.node('Add', [g.node('Add', [convBn(g, 'x', 3), convBn(g, 'x', 1)]), g.constant([], [0.5])]);
    const { fusion } = await fusesTo(model(g, g.node('Relu', [s])), [{ stride: 1, groups: 1, kernel: 3, branches: ['dense', 'oneByOne'] }], {
      opsLeft: ['Constant', 'Add', 'Relu'],
    });
    expect(count(fusion.model, 'Add')).toBe(1);
  });

  it('a lone conv + BN with nothing that says it is a block stays as it is', async () => {
    const g = new GraphBuilder(9);
    const file = await write(model(g, g.node('Relu', [g.node('Identity', [convBn(g, 'x', 3)])])));
    expect(allBlocks(await structureOf(file))).toEqual([]);
  });

  it('an initializer said to be 0 that is not: the block is found, and fusion leaves it as it is and says why', async () => {
    const g = new GraphBuilder(10);
    const notZero = g.constantInitializer('not_zero', [1], [0.25]);
    const y = g.node('Relu', [g.node('Add', [g.node('Add', [convBn(g, 'x', 3), convBn(g, 'x', 1)]), notZero], {}, 'suspect_add')]);
    const file = await write(model(g, y));
    // The reason names the node and the tensor.
    const result = await convertFile(file, { output: file.replace(/\.onnx$/, '.refused.onnx') });
    expect([result.blocksFused, result.warnings]).toEqual([0, [expect.stringMatching(/^blocks\.0: left unfused: suspect_add: not_zero is not 0 everywhere/)]]);
    const m = await openModelFile(file);
    try {
      const fusion = await fuseOnnxModel(m, buildStructure(m));
      expect(fusion.fused).toEqual([]);
      expect(fusion.skipped.map((s) => s.reason)).toEqual([expect.stringMatching(/^suspect_add: not_zero is not 0 everywhere/)]);
    } finally {
      await m.close();
    }
  });
});

describe('other no-ops exporters leave', () => {
  it('Identity, inference Dropout and Mul by 1 on branches, after the post BN and on the input side', async () => {
    const g = new GraphBuilder(11);
    const x = g.node('Identity', ['x']);
    const dense = g.node('Identity', [convBn(g, x, 3)]);
    const scale = g.node('Mul', [g.constant([], [1]), convBn(g, x, 1)]);
    const skip = g.node('Dropout', [g.bn(x, C)]);
    const s = g.node('Dropout', [g.bn(g.node('Add', [g.node('Add', [dense, scale]), skip]), C)]);
    const { structure } = await fusesTo(model(g, g.node('Relu', [g.node('Identity', [s])])), [
      { stride: 1, groups: 1, kernel: 3, branches: ['dense', 'oneByOne', 'identity'], postBn: true },
    ]);
    // The block reads the graph input itself: the Identity on the input side went with it.
    expect(allBlocks(structure)[0].onnx!.input).toBe('x');
  });

  it('a no-op after the sum whose result two nodes read ends the block: the Conv writes that result', async () => {
    const g = new GraphBuilder(12);
    const s = g.node('Add', [convBn(g, 'x', 3), convBn(g, 'x', 1)]);
    const shared = g.node('Identity', [s]);
    const y = g.node('Add', [g.node('Relu', [shared]), shared]);
    const { structure } = await fusesTo(model(g, y), [{ stride: 1, groups: 1, kernel: 3, branches: ['dense', 'oneByOne'] }], { opsLeft: ['Relu', 'Add'] });
    expect(allBlocks(structure)[0].onnx!.output).toBe(shared);
  });

  it('an input-side no-op that something else reads stays; the block reads past it', async () => {
    const g = new GraphBuilder(19);
    const x = g.node('Identity', ['x']);
    const s = g.node('Add', [g.node('Add', [convBn(g, x, 3), convBn(g, 'x', 1)]), g.bn(x, C)]);
    const y = g.node('Add', [g.node('Relu', [s]), x]);
    const { structure } = await fusesTo(model(g, y), [{ stride: 1, groups: 1, kernel: 3, branches: ['dense', 'oneByOne', 'identity'] }], {
      opsLeft: ['Identity', 'Relu', 'Add'],
    });
    expect(allBlocks(structure)[0].onnx!.input).toBe('x');
  });
});

describe('QARepVGG (YOLOv6): bare 1×1 conv, bare identity, BatchNorm after the sum', () => {
  const qaBranches = (g: GraphBuilder, x: string, stride = 1) => [convBn(g, x, 3, { stride }), g.conv(x, { out: C, in: C, k: 1, stride })];

  it('QARepVGGBlock: stride 2 without identity, then stride 1 with the input added as it is', async () => {
    const g = new GraphBuilder(13);
    const a = g.node('Relu', [g.bn(g.node('Add', qaBranches(g, 'x', 2)), C)]);
    const b = g.node('Relu', [g.bn(g.node('Add', [g.node('Add', qaBranches(g, a)), a]), C)]);
    const { structure } = await fusesTo(
      model(g, b, C, 4),
      [
        { stride: 2, groups: 1, kernel: 3, branches: ['dense', 'oneByOne'], postBn: true },
        { stride: 1, groups: 1, kernel: 3, branches: ['dense', 'oneByOne', 'bare'], postBn: true },
      ],
      { convs: 2, opsLeft: ['Relu', 'Relu'] },
    );
    // The 1×1 conv and the identity are summed as they are; only the k×k branch has a BN of its own.
    expect(allBlocks(structure).map((b) => b.branches.map((x) => x.withoutBn ?? false))).toEqual([
      [false, true],
      [false, true, true],
    ]);
  });

  it('QARepVGGBlockV2: an AveragePool branch, as torch writes it (Pad, then AveragePool) and with its own pads', async () => {
    const g = new GraphBuilder(14);
    const padded = g.node('AveragePool', [g.node('Pad', ['x', g.constant([8], [0, 0, 1, 1, 0, 0, 1, 1], 7)], { mode: 'constant' })], {
      kernel_shape: [3, 3],
      pads: [0, 0, 0, 0],
      strides: [1, 1],
    });
    const a = g.node('Relu', [g.bn(g.node('Add', [g.node('Add', [g.node('Add', qaBranches(g, 'x')), 'x']), padded]), C)]);
    const own = g.node('AveragePool', [a], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], count_include_pad: 1 });
    const b = g.node('Relu', [g.bn(g.node('Sum', [...qaBranches(g, a), own, a]), C)]);
    const { fusion } = await fusesTo(
      model(g, b),
      [
        { stride: 1, groups: 1, kernel: 3, branches: ['dense', 'oneByOne', 'bare', 'avgPool'], postBn: true },
        { stride: 1, groups: 1, kernel: 3, branches: ['dense', 'oneByOne', 'bare', 'avgPool'], postBn: true },
      ],
      { convs: 2, opsLeft: ['Relu', 'Relu'] },
    );
    expect(count(fusion.model, 'Pad') + count(fusion.model, 'AveragePool') + count(fusion.model, 'Constant')).toBe(0);
  });

  it('grouped QARepVGGBlockV2 (groups 2) with its AveragePool', async () => {
    const g = new GraphBuilder(15);
    const pool = g.node('AveragePool', ['x'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], count_include_pad: 1 });
    const s = g.node('Add', [g.node('Add', [convBn(g, 'x', 3, { group: 2 }), g.conv('x', { out: C, in: C, k: 1, group: 2 })]), g.node('Add', ['x', pool])]);
    await fusesTo(model(g, g.node('Relu', [g.bn(s, C)])), [
      { stride: 1, groups: 2, kernel: 3, branches: ['dense', 'oneByOne', 'bare', 'avgPool'], postBn: true },
    ]);
  });
});

describe('blocks left unfused are reported, never passed over', () => {
  it('an AveragePool that does not count the padding: found, warned about with the reason, left as it is', async () => {
    const g = new GraphBuilder(16);
    const pool = g.node('AveragePool', ['x'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'avg_excluding_pad');
    const y = g.node('Relu', [g.node('Add', [g.node('Add', [convBn(g, 'x', 3), convBn(g, 'x', 1)]), pool])]);
    const file = await write(model(g, y));
    const [block] = allBlocks(await structureOf(file));
    expect(block.onnx?.fusible).toBe(false);
    expect(block.warnings).toEqual([expect.stringMatching(/^avg_excluding_pad: count_include_pad 0/)]);
  });

  it('nodes named like a MobileOne block that do not form one: a structure warning naming the block and why', async () => {
    const g = new GraphBuilder(17);
    const other = g.node('Relu', ['x']);
    // The 1×1 "scale" branch reads another tensor than the k×k one.
    const a = g.conv('x', { out: C, in: C, k: 3, bias: true, name: '/stage1/stage1.0/rbr_conv.0/conv/Conv' });
    const b = g.conv(other, { out: C, in: C, k: 1, bias: true, name: '/stage1/stage1.0/rbr_scale/conv/Conv' });
    const y = g.node('Relu', [g.node('Add', [b, a], {}, '/stage1/stage1.0/Add')]);
    const file = await write(model(g, y));
    const structure = await structureOf(file);
    expect(structure.warnings).toEqual([
      {
        block: 'stage1.0',
        message: expect.stringMatching(
          /^named like a MobileOne block, but its nodes do not form one that RepLens can fuse: \/stage1\/stage1\.0\/Add sums branches that do not all read one input/,
        ),
      },
    ]);
    expect(allBlocks(structure).map((b) => [b.name, b.family, b.onnx?.fusible])).toEqual([['stage1.0', 'mobileone', false]]);
  });

  it('a MobileOne pointwise block that torch writes as one Conv (no Add at all) is found by its name and fused', async () => {
    const g = new GraphBuilder(18);
    const y = g.node('Relu', [g.conv('x', { out: C, in: C, k: 1, bias: true, name: '/stage2/stage2.1/rbr_conv.0/conv/Conv' })]);
    const { structure } = await fusesTo(model(g, y), [{ stride: 1, groups: 1, kernel: 1, branches: ['dense'] }]);
    expect(allBlocks(structure).map((b) => [b.name, b.family, b.onnx?.familySource])).toEqual([['stage2.1', 'mobileone', 'node-names']]);
  });
});
