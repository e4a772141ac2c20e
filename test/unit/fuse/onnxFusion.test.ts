import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convertFile } from '../../../src/core/convert/convert';
import { numberToFloat16Bits } from '../../../src/core/formats/encode';
import { decodeOnnxModel, encodeOnnxModel } from '../../../src/core/formats/onnxCodec';
import type { OnnxModel } from '../../../src/core/formats/onnxModel';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { decodeToFloat64 } from '../../../src/core/formats/tensor';
import { fuseBlock, FusionError } from '../../../src/core/fuse/fuseBlock';
import { fuseOnnxModel, onnxBlockOutputs } from '../../../src/core/fuse/onnxFusion';
import { buildStructure } from '../../../src/core/model/buildStructure';
import { allBlocks, type Block, type ModelStructure } from '../../../src/core/model/structure';
import { fixture, GraphBuilder, onnxChecker, opCount, randomInput, relativeError, runModel, syntheticModel, valueInfo } from '../model/onnxTestKit';

const scratch = mkdtempSync(path.join(tmpdir(), 'replens-onnx-fusion-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let folders = 0;
/** Copies fixtures into a fresh folder, so outputs land beside them as they would for a user. */
function copied(...names: string[]): string {
  const dir = path.join(scratch, `case${folders++}`);
  mkdirSync(dir);
  for (const n of names) copyFileSync(fixture(n), path.join(dir, n));
  return path.join(dir, names[0]);
}

async function readBack(file: string): Promise<{ model: OnnxModel; structure: ModelStructure }> {
  const m = await openModelFile(file);
  try {
    return { model: m.onnx!, structure: buildStructure(m) };
  } finally {
    await m.close();
  }
}

const FP16_BOUND = 4e-3;
const IMAGE = { name: 'input', dims: [1, 3, 32, 32], data: randomInput([1, 3, 32, 32], 2024) };

describe.each([
  { name: 'repvgg_tiny_train.onnx', files: ['repvgg_tiny_train.onnx'], output: 'output' },
  { name: 'repvgg_tiny_train_folded.onnx', files: ['repvgg_tiny_train_folded.onnx'], output: 'output' },
  { name: 'repvgg_tiny_external.onnx', files: ['repvgg_tiny_external.onnx', 'repvgg_tiny_external.onnx.data'], output: 'output' },
  { name: 'yolov7_repconv_train.onnx', files: ['yolov7_repconv_train.onnx'], output: 'output' },
])('convert $name', ({ files, output: outputName }) => {
  const run = (async () => {
    const input = copied(...files);
    const result = await convertFile(input);
    return { input, result, before: await readBack(input), after: await readBack(result.output) };
  })();

  it('writes <stem>.deploy.onnx with one Conv per block where the branches and Adds were', async () => {
    const { input, result, before, after } = await run;
    expect(result.output).toBe(input.replace(/\.onnx$/, '.deploy.onnx'));
    expect(result.format).toBe('onnx');
    const blocks = allBlocks(before.structure);
    expect(result.blocksFused).toBe(blocks.length);
    const g0 = before.model.graph!;
    const g1 = after.model.graph!;
    const inBlocks = (op: string) => blocks.reduce((n, b) => n + b.onnx!.nodes.filter((i) => g0.node[i].opType === op).length, 0);
    expect(opCount(after.model, 'Conv')).toBe(opCount(before.model, 'Conv') - inBlocks('Conv') + blocks.length);
    expect(opCount(after.model, 'BatchNormalization')).toBe(opCount(before.model, 'BatchNormalization') - inBlocks('BatchNormalization'));
    expect(opCount(after.model, 'Add')).toBe(opCount(before.model, 'Add') - inBlocks('Add'));
    expect(result.graph?.nodes).toEqual({ before: g0.node.length, after: g1.node.length });
    for (const b of blocks) {
      const producers = g1.node.filter((n) => n.output.includes(b.onnx!.output));
      expect(producers).toHaveLength(1);
      expect(producers[0]).toMatchObject({ opType: 'Conv', input: [b.onnx!.input, expect.any(String), expect.any(String)] });
      const weight = g1.initializer.find((t) => t.name === producers[0].input[1])!;
      expect(weight.dims).toEqual([b.outChannels, b.inChannels / b.groups, b.kernel, b.kernel]);
    }
  });

  it('drops the branch initializers and the value_info of removed tensors, keeps everything else', async () => {
    const { before, after } = await run;
    const g0 = before.model.graph!;
    const g1 = after.model.graph!;
    const blocks = allBlocks(before.structure);
    const owned = new Set(blocks.flatMap((b) => b.tensors));
    const names1 = new Set(g1.initializer.map((t) => t.name));
    expect([...owned].filter((n) => names1.has(n))).toEqual([]);
    expect(
      g0.initializer
        .map((t) => t.name)
        .filter((n) => !owned.has(n!))
        .every((n) => names1.has(n)),
    ).toBe(true);
    expect(g1.initializer).toHaveLength(g0.initializer.length - owned.size + 2 * blocks.length);
    // Every node outside the blocks is still there, in the same order.
    const removed = new Set(blocks.flatMap((b) => b.onnx!.nodes));
    const kept = g0.node.filter((_, i) => !removed.has(i)).map((n) => n.name);
    expect(g1.node.map((n) => n.name).filter((n) => kept.includes(n))).toEqual(kept);
    const produced = new Set([...g1.node.flatMap((n) => n.output), ...g1.input.map((v) => v.name)]);
    expect(g1.valueInfo.filter((v) => !produced.has(v.name!))).toEqual([]);
    expect(g1.valueInfo.length).toBe(g0.valueInfo.filter((v) => produced.has(v.name!)).length);
    expect([g1.input, g1.output]).toEqual([g0.input, g0.output]);
    expect([after.model.opsetImport, after.model.irVersion]).toEqual([before.model.opsetImport, before.model.irVersion]);
  });

  it('decodes and re-encodes byte for byte, with all weights inline (no external data)', async () => {
    const { result, after } = await run;
    const bytes = new Uint8Array(readFileSync(result.output));
    // Buffer#equals: vitest's deep equality is slow on large typed arrays.
    expect(Buffer.from(await encodeOnnxModel(decodeOnnxModel(bytes))).equals(bytes)).toBe(true);
    expect(after.model.graph!.initializer.every((t) => t.dataLocation === undefined && t.externalData.length === 0)).toBe(true);
    expect(result.bytesWritten).toBe(bytes.length);
  });

  it('reads back as the deploy form of the same blocks', async () => {
    const { before, after } = await run;
    // YOLOv7 shares 'rbr_reparam' with RepVGG; the SiLU after each conv tells them apart.
    expect([after.structure.form, after.structure.family]).toEqual(['deploy', before.structure.family]);
    const shape = (b: Block) => [b.name, b.inChannels, b.outChannels, b.kernel, b.stride, b.groups];
    expect(allBlocks(after.structure).map(shape)).toEqual(allBlocks(before.structure).map(shape));
    expect(after.structure.params.total).toBe(before.structure.params.afterFusion);
  });

  it('computes the same output in ONNX Runtime (seeded 1×3×32×32 input) and passes the onnx checker', async () => {
    const { input, result } = await run;
    const reference = (await runModel(input, IMAGE)).get(outputName)!;
    const fused = (await runModel(result.output, IMAGE)).get(outputName)!;
    expect(relativeError(reference, fused).relative).toBeLessThanOrEqual(1e-4);
    expect(onnxChecker(result.output)).toBe('');
  });
});

describe('the fused weights', () => {
  it.each(['repvgg_tiny_train.onnx', 'repvgg_tiny_train_folded.onnx'])("of %s are those of torch's own fusion, under the same names", async (name) => {
    const result = await convertFile(copied(name));
    const ours = await openModelFile(result.output);
    const torch = await openModelFile(fixture('repvgg_tiny_deploy.onnx'));
    try {
      // Each block's pair takes the place of its first initializer, so the order follows the input's (the folded export lists identity BNs first).
      const byName = new Map(ours.tensors.map((t) => [t.name, t]));
      expect(ours.tensors).toHaveLength(torch.tensors.length);
      for (const t of torch.tensors) {
        const mine = byName.get(t.name)!;
        expect([mine.dtype, mine.shape]).toEqual([t.dtype, t.shape]);
        expect(relativeError(await t.toFloat64(), await mine.toFloat64()).relative, t.name).toBeLessThanOrEqual(1e-6);
      }
    } finally {
      await Promise.all([ours.close(), torch.close()]);
    }
  });
});

describe('block outputs for parity', () => {
  it('name the same tensor in both graphs, and each block agrees when exposed as a graph output', async () => {
    const input = copied('repvgg_tiny_train.onnx');
    const result = await convertFile(input);
    const before = await readBack(input);
    const outputs = onnxBlockOutputs(before.structure);
    expect(result.graph?.blockOutputs).toEqual(outputs);
    expect(outputs.map((o) => o.block)).toEqual(allBlocks(before.structure).map((b) => b.name));
    expect(outputs.every((o) => o.original === o.fused)).toBe(true);

    // What a parity engine does: add the block outputs as graph outputs of both models and compare.
    const exposed = async (file: string, name: string) => {
      const m = await openModelFile(file);
      const out = path.join(path.dirname(file), name);
      try {
        const g = m.onnx!.graph!;
        const typed = new Map(g.valueInfo.map((v) => [v.name, v]));
        const withOutputs = { ...m.onnx!, graph: { ...g, output: [...g.output, ...outputs.map((o) => typed.get(o.fused)!)] } };
        writeFileSync(out, await encodeOnnxModel(withOutputs));
      } finally {
        await m.close();
      }
      return runModel(out, IMAGE);
    };
    const a = await exposed(input, 'train_exposed.onnx');
    const b = await exposed(result.output, 'deploy_exposed.onnx');
    for (const o of outputs) expect(relativeError(a.get(o.original)!, b.get(o.fused)!).relative, o.block).toBeLessThanOrEqual(1e-5);
  });
});

describe('graphs without known names', () => {
  it('fuses the fusible blocks, leaves the others as they are, and stays exact', async () => {
    const file = path.join(scratch, 'synthetic.onnx');
    writeFileSync(file, await encodeOnnxModel(syntheticModel(7)));
    const result = await convertFile(file);
    expect(result.blocksFused).toBe(2);
    expect(result.warnings).toEqual([
      expect.stringMatching(/^layer1\.1: left unfused: .*dilations \[2, 2\]/),
      expect.stringMatching(/^blocks\.1: left unfused: .*pads \[0, 0, 2, 2\]/),
    ]);
    const { model, structure } = await readBack(result.output);
    // The unfused blocks are still found; the fused ones are no blocks any more (no family name says 'deploy').
    expect(allBlocks(structure).map((b) => [b.name, b.form])).toEqual([
      ['layer1.1', 'train'],
      ['blocks.0', 'train'],
    ]);
    expect(model.graph!.node.map((n) => n.name).filter((n) => n?.includes('reparam'))).toEqual(['/blocks.0.reparam/Conv', '/layer1/layer1.0/reparam/Conv']);
    const x = { name: 'x', dims: [1, 4, 8, 8], data: randomInput([1, 4, 8, 8], 11) };
    const y = model.graph!.output[0].name!;
    expect(relativeError((await runModel(file, x)).get(y)!, (await runModel(result.output, x)).get(y)!).relative).toBeLessThanOrEqual(1e-4);
    expect(onnxChecker(result.output)).toBe('');
  });

  it('an fp16 model gets fp16 fused weights, rounded once from the float64 fusion', async () => {
    const g = new GraphBuilder(9);
    const y = g.node('Add', [g.bn(g.conv('x', { out: 4, in: 4, k: 3 }), 4), g.conv('x', { out: 4, in: 4, k: 1, bias: true })]);
    const z = g.node('Add', [y, 'x']);
    const model = g.model(valueInfo('x', [1, 4, 8, 8], 10), z, [1, 4, 8, 8]);
    model.graph!.output[0].type!.tensorType!.elemType = 10;
    for (const t of model.graph!.initializer) {
      const values = new Float32Array((t.rawData as Uint8Array).slice().buffer);
      t.dataType = 10;
      t.rawData = new Uint8Array(Uint16Array.from(values, numberToFloat16Bits).buffer);
    }
    const file = path.join(scratch, 'fp16.onnx');
    writeFileSync(file, await encodeOnnxModel(model));
    const m = await openModelFile(file);
    try {
      const structure = buildStructure(m);
      const fusion = await fuseOnnxModel(m, structure);
      const [block] = fusion.fused;
      const [weight, bias] = fusion.model.graph!.initializer.slice(-2);
      expect([weight.dataType, bias.dataType, weight.name, bias.name]).toEqual([10, 10, 'blocks.0.reparam.weight', 'blocks.0.reparam.bias']);
      const exact = await fuseBlock(block, async (name) => m.tensors.find((t) => t.name === name)!.toFloat64());
      expect(decodeToFloat64('float16', weight.rawData as Uint8Array)).toEqual(
        decodeToFloat64('float16', new Uint8Array(Uint16Array.from(exact.weight, numberToFloat16Bits).buffer)),
      );
      const out = path.join(scratch, 'fp16.deploy.onnx');
      writeFileSync(out, await encodeOnnxModel(fusion.model));
      expect(onnxChecker(out)).toBe('');
      const x = { name: 'x', dims: [1, 4, 8, 8], data: Uint16Array.from(randomInput([1, 4, 8, 8], 5), numberToFloat16Bits), type: 'float16' as const };
      const y = model.graph!.output[0].name!;
      // fp16 arithmetic on both sides: the bound is fp16's precision, not float32's.
      expect(relativeError((await runModel(file, x)).get(y)!, (await runModel(out, x)).get(y)!).relative).toBeLessThanOrEqual(FP16_BOUND);
    } finally {
      await m.close();
    }
  });
});

describe('fusing a branch without BN', () => {
  const block = (withoutBn: boolean): Block => ({
    name: 'b',
    family: 'repvgg',
    stage: 'b',
    inChannels: 2,
    outChannels: 2,
    kernel: 3,
    stride: 1,
    strideSource: 'attribute',
    padding: 1,
    paddingSource: 'attribute',
    groups: 1,
    groupsSource: 'attribute',
    dilation: 1,
    form: 'train',
    branches: [
      { role: 'dense', module: 'conv', convWeight: 'w', convBias: 'bias', weightShape: [2, 2, 3, 3], ...(withoutBn ? { withoutBn: true as const } : {}) },
      { role: 'identity', module: 'x', ...(withoutBn ? { withoutBn: true as const } : {}) },
    ],
    params: { train: 0, deploy: 0 },
    tensors: [],
    warnings: [],
  });
  const tensors: Record<string, Float64Array> = { w: Float64Array.from({ length: 36 }, (_, i) => i / 10), bias: Float64Array.of(0.5, -0.25) };
  const load = async (name: string) => tensors[name];

  it('is taken as it is when flagged: weight + centred identity, bias unchanged', async () => {
    const fused = await fuseBlock(block(true), load);
    const expected = Float64Array.from(tensors.w);
    expected[4] += 1; // out 0, in 0, centre
    expected[18 + 9 + 4] += 1; // out 1, in 1, centre
    expect([...fused.weight]).toEqual([...expected]);
    expect([...fused.bias]).toEqual([0.5, -0.25]);
    expect(fused.eps).toEqual({});
  });

  it('is still an error when not flagged: a missing BN is never read as no BN', async () => {
    await expect(fuseBlock(block(false), load)).rejects.toThrow(FusionError);
  });
});

describe('convert refuses what it cannot do for ONNX', () => {
  it('other output formats, another dtype, deploy models, graphs without blocks; for a checkpoint written as ONNX, another dtype or a state dict', async () => {
    const input = copied('repvgg_tiny_train.onnx');
    await expect(convertFile(input, { format: 'pth' })).rejects.toThrow(/converted to ONNX, not pth/);
    await expect(convertFile(input, { dtype: 'float16' })).rejects.toThrow(/keeps its tensor types/);
    await expect(convertFile(copied('repvgg_tiny_deploy.onnx'))).rejects.toThrow(/already in deploy form/);
    const g = new GraphBuilder(1);
    const plain = path.join(scratch, 'plain.onnx');
    writeFileSync(plain, await encodeOnnxModel(g.model(valueInfo('x', [1, 4, 8, 8]), g.conv('x', { out: 4, in: 4, k: 3 }), [1, 4, 8, 8])));
    await expect(convertFile(plain)).rejects.toThrow(/no re-parameterizable blocks found/);
    const checkpoint = copied('repvgg_tiny_train.pth');
    await expect(convertFile(checkpoint, { format: 'onnx', dtype: 'float16' })).rejects.toThrow(/do not apply to an ONNX output/);
    await expect(convertFile(checkpoint, { format: 'onnx', stateDict: true })).rejects.toThrow(/do not apply to an ONNX output/);
  });

  it('reports progress per block and can be cancelled, leaving nothing behind', async () => {
    const input = copied('repvgg_tiny_train.onnx');
    const controller = new AbortController();
    const seen: string[] = [];
    const error = await convertFile(input, {
      signal: controller.signal,
      onProgress: (done, total, b) => {
        seen.push(`${done}/${total} ${b.name}`);
        if (done === 2) controller.abort();
      },
    }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/cancelled/);
    expect(seen).toEqual(['1/7 stage0', '2/7 stage1.0']);
    expect(readdirSync(path.dirname(input))).toEqual(['repvgg_tiny_train.onnx']);
  });
});
