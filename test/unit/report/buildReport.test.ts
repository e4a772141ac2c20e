import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { inspectFile } from '../../../src/core/inspect';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertFile } from '../../../src/core/convert/convert';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { buildStructure } from '../../../src/core/model/buildStructure';
import { allBlocks, type ModelStructure } from '../../../src/core/model/structure';
import { buildReport, type ReportOptions } from '../../../src/core/report/buildReport';
import type { GraphView, ReportData } from '../../../src/shared/reportData';
import { parityWorkerUnderTest } from '../parity/bundle';
import { MODELS, TINY } from '../parity/faultyFiles';
import { graphNodeCount } from '../../../webview/reportModel/costs';

const env = parityWorkerUnderTest('replens-report-');
let small: ReportOptions;

beforeAll(async () => {
  small = { workerPath: env.workerPath, shape: [1, 3, 32, 32], inputs: 2, latencyRuns: 1 };
});

const TINY_BLOCKS = ['stage0', 'stage1.0', 'stage2.0', 'stage2.1', 'stage3.0', 'stage3.1', 'stage4.0'];

const structureOf = async (file: string): Promise<ModelStructure> => (await inspectFile(file)).structure;

/** Per-output-channel max |w| of each block's deploy weight in a deploy checkpoint fused by PyTorch (the fixture generator). */
async function torchChannelMaxAbs(): Promise<Map<string, number[]>> {
  const model = await openModelFile(path.join(MODELS, 'repvgg_tiny_deploy.pth'));
  try {
    const result = new Map<string, number[]>();
    for (const block of allBlocks(buildStructure(model))) {
      const tensor = model.tensors.find((t) => t.name === block.deploy!.weight)!;
      const w = await tensor.toNumbers();
      const per = w.length / tensor.shape[0];
      result.set(
        block.name,
        Array.from({ length: tensor.shape[0] }, (_, c) => Math.max(...Array.from(w.subarray(c * per, (c + 1) * per), Math.abs))),
      );
    }
    return result;
  } finally {
    await model.close();
  }
}

const ops = (graph: GraphView, block: string) => graph.nodes.filter((n) => n.block === block).map((n) => n.label);
const count = (labels: string[], label: string) => labels.filter((l) => l === label).length;

/** What every report of repvgg_tiny must say about its blocks, whatever the file it came from. */
async function expectTinyBlocks(report: ReportData, file: string): Promise<void> {
  const structure = await structureOf(file);
  expect(report.blocks.map((b) => b.name)).toEqual(TINY_BLOCKS);
  const torch = await torchChannelMaxAbs();
  for (const [i, block] of allBlocks(structure).entries()) {
    const b = report.blocks[i];
    expect(b).toMatchObject({ stage: block.stage, inChannels: block.inChannels, outChannels: block.outChannels, kernel: 3, groups: 1 });
    expect(b.paramsAfter).toBe(block.outChannels * block.inChannels * 9 + block.outChannels);
    expect(b.paramsAfter).toBeLessThan(b.paramsBefore);

    // The mapping between the graphs: the block's convs (and BatchNorms, where the file has them) before, one 3×3 conv after.
    const before = ops(report.before, b.name);
    const after = ops(report.after, b.name);
    const convBranches = block.branches.filter((br) => br.convWeight).length;
    expect(count(before, 'Conv 3×3') + count(before, 'Conv 1×1')).toBe(convBranches);
    expect(count(before, 'BatchNorm')).toBe(block.branches.filter((br) => br.bn).length);
    expect(count(after, 'Conv 3×3')).toBe(1);
    expect(count(after, 'Conv 1×1') + count(after, 'BatchNorm')).toBe(0);

    // Parity numbers for every block.
    expect(b.parity).toBeDefined();
    expect(b.parity!.pass).toBe(true);
    expect(b.parity!.maxRel).toBeLessThanOrEqual(report.rtol);
    expect(b.parity!.cosine).toBeGreaterThan(0.999999);

    // Kernel statistics of the fused kernel, against the kernel PyTorch fused.
    const k = b.kernelStats!;
    const expected = torch.get(b.name)!;
    expect(k.channelMaxAbs).toHaveLength(block.outChannels);
    k.channelMaxAbs.forEach((v, c) => expect(v).toBeCloseTo(expected[c], 5));
    expect(k.maxAbs).toBe(Math.max(...k.channelMaxAbs));
    const sorted = [...k.channelMaxAbs].sort((x, y) => x - y);
    const median = sorted.length % 2 ? sorted[sorted.length >> 1] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
    expect(k.outlierRatio).toBeCloseTo(k.maxAbs / median, 12);
  }
  // Stage boxes in both graphs, one per stage.
  const stages = [...new Set(report.blocks.map((b) => b.stage))];
  for (const graph of [report.before, report.after]) expect(graph.groups.map((g) => g.stage).sort()).toEqual([...stages].sort());
}

describe('buildReport', () => {
  it('a checkpoint: train form against the deploy form fused in memory', async () => {
    const report = await buildReport(TINY, small);
    expect(report).toMatchObject({
      input: TINY,
      output: null,
      family: 'repvgg',
      pass: true,
      parityError: null,
      inputs: 2,
      shape: [1, 3, 32, 32],
      atol: 1e-4,
      rtol: 1e-3,
    });
    expect(report.outputs.map((o) => [o.name, o.top1Agreement])).toEqual([['output', 1]]);
    expect(report.forms.train).toMatchObject({ params: 31322, macs: 235840, nodes: 49, fileBytes: (await stat(TINY)).size });
    expect(report.forms.deploy).toMatchObject({ params: 27762, macs: 212288, nodes: 17, fileBytes: null });
    const { size, mtimeMs } = await stat(TINY);
    expect(report.stamps).toEqual({ input: { bytes: size, modifiedMs: mtimeMs }, output: null });
    // No file was written, so there is nothing to load.
    expect(report).not.toHaveProperty('load');
    // The graphs shown are the ones parity ran: every node, the input, and the outputs (the logits and each block's result).
    const terminals = 1 + 1 + TINY_BLOCKS.length;
    expect(report.before.nodes).toHaveLength(49 + terminals);
    expect(report.after.nodes).toHaveLength(17 + terminals);
    // The graph headers count what the Summary counts.
    expect([graphNodeCount(report.before), graphNodeCount(report.after)]).toEqual([report.forms.train.nodes, report.forms.deploy.nodes]);
    await expectTinyBlocks(report, TINY);
  }, 60_000);

  it('a checkpoint against the file Convert wrote: the kernel statistics are the written kernels', async () => {
    const output = path.join(env.dir, 'tiny.deploy.pth');
    const converted = await convertFile(TINY, { output, force: true });
    const report = await buildReport(TINY, { ...small, deploy: output, load: converted.load });
    expect(report).toMatchObject({ output, pass: true, parityError: null });
    expect(report.forms.deploy).toMatchObject({ params: 27762, nodes: 17, fileBytes: converted.bytesWritten });
    await expectTinyBlocks(report, TINY);
  }, 60_000);

  it('an ONNX export with BN folded: the graph as it is against its blocks fused in place', async () => {
    const folded = path.join(MODELS, 'repvgg_tiny_train_folded.onnx');
    const report = await buildReport(folded, small);
    expect(report).toMatchObject({ output: null, pass: true, parityError: null });
    expect(report.forms.train).toMatchObject({ params: 31034, nodes: 35 });
    expect(report.forms.deploy).toMatchObject({ params: 27762, nodes: 17 });
    await expectTinyBlocks(report, folded);
  }, 60_000);

  it('an ONNX export against the file Convert wrote (the extension’s Convert → report path)', async () => {
    const input = path.join(MODELS, 'repvgg_tiny_train.onnx');
    const output = path.join(env.dir, 'tiny.deploy.onnx');
    const converted = await convertFile(input, { output, force: true });
    const report = await buildReport(input, { ...small, deploy: output, load: converted.load });
    expect(report).toMatchObject({ output, pass: true, parityError: null });
    expect(report.load).toEqual(converted.load);
    expect(report.forms.train).toMatchObject({ nodes: converted.graph!.nodes.before, fileBytes: (await stat(input)).size });
    expect(report.forms.deploy).toMatchObject({ nodes: converted.graph!.nodes.after, fileBytes: converted.bytesWritten });
    expect(report.stamps.output).toEqual({ bytes: converted.bytesWritten, modifiedMs: (await stat(output)).mtimeMs });
    expect(report.blocks.map((b) => b.name)).toEqual(converted.graph!.blockOutputs.map((b) => b.block));
    await expectTinyBlocks(report, input);
  }, 60_000);

  it('says why parity did not run, and still shows both graphs', async () => {
    const report = await buildReport(TINY, { ...small, workerPath: path.join(env.dir, 'missing-worker.js') });
    expect(report.pass).toBeNull();
    expect(report.parityError).toMatch(/missing-worker\.js is missing/);
    expect(report.blocks.every((b) => b.parity === undefined && b.kernelStats !== undefined)).toBe(true);
    expect(report.forms.train.nodes).toBe(49);
    expect(report.after.nodes.length).toBeGreaterThan(0);
    // Costs do not need parity: MACs come from the graphs; nothing says '0 inputs' was checked, and the report says what next.
    expect([report.forms.train.macs, report.forms.deploy.macs]).toEqual([235840, 212288]);
    expect(report.toleranceBasis).toBeNull();
    expect(report.advice).toMatch(/^Fix what the error names, then Check Parity again/);
  }, 60_000);
});
