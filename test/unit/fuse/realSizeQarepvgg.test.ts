import { describe, expect, it } from 'vitest';
import { planDeploy } from '../../../src/core/convert/deployPlan';
import { fuseBlock } from '../../../src/core/fuse/fuseBlock';
import { buildStructure } from '../../../src/core/model/buildStructure';
import { allBlocks, type Block } from '../../../src/core/model/structure';
import { memoryModel, qarepvggBlock, seededRandom, Synth, yolov6nBackbone } from '../model/synthetic';
import { blockForward, relMax } from './blockForward';
import { batchNorm, conv2d } from './reference';
import { producedBytes } from '../writers/producedBytes';

/*
 * Real size: the EfficientRep backbone of YOLOv6-n built of QARepVGGBlockV2 (16 … 256 channels,
 * 19 blocks, about a million parameters), as a float32 state dict read with qarepvgg 'v2'. The deploy
 * plan's rbr_reparam tensors are checked against a float64 kernel assembled here term by term, and a
 * few blocks (the widest among them) are run both ways on an input.
 */

const ulp32 = (x: number) => {
  const a = Math.abs(Math.fround(x));
  return a < 2 ** -126 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(a)) - 23);
};

/** YOLOv6's pre-BN kernel of a QARepVGGBlockV2, in float64: dense conv·t, the 1×1 at the centre, 1 and 1/9s on channel c mod in/groups. */
function referenceKernel(block: Block, v: (name: string) => Float64Array): { weight: Float64Array; bias: Float64Array } {
  const out = block.outChannels;
  const ipg = block.inChannels / block.groups;
  const p = block.name;
  const [w3, w1] = [v(`${p}.rbr_dense.conv.weight`), v(`${p}.rbr_1x1.weight`)];
  const [g, b, m, vr] = ['weight', 'bias', 'running_mean', 'running_var'].map((n) => v(`${p}.rbr_dense.bn.${n}`));
  const weight = new Float64Array(out * ipg * 9);
  const bias = new Float64Array(out);
  const same = block.inChannels === block.outChannels && block.stride === 1;
  for (let o = 0; o < out; o++) {
    const t = g[o] / Math.sqrt(vr[o] + 1e-3);
    bias[o] = b[o] - m[o] * t;
    for (let i = 0; i < ipg; i++) {
      for (let k = 0; k < 9; k++) {
        let x = w3[(o * ipg + i) * 9 + k] * t;
        if (k === 4) x += w1[o * ipg + i];
        if (same && i === o % ipg) x += (k === 4 ? 1 : 0) + 1 / 9;
        weight[(o * ipg + i) * 9 + k] = x;
      }
    }
  }
  return { weight, bias };
}

describe('real size: a YOLOv6-n QARepVGGBlockV2 backbone', () => {
  it('every rbr_reparam is the float64 kernel rounded once (within ½ float32 ulp), bn is kept, and the widest blocks compute the train block', async () => {
    const started = performance.now();
    const s = new Synth(41);
    const specs = yolov6nBackbone();
    for (const b of specs) qarepvggBlock(s, b, 'v2');
    // As a float32 file holds them.
    for (const t of s.tensors) if (t.dtype === 'float32') t.values = Float64Array.from(Float32Array.from(t.values));
    const values = new Map(s.tensors.map((t) => [t.name, t.values]));
    const v = (n: string) => values.get(n)!;
    const model = memoryModel(s.tensors);
    const structure = buildStructure(model, { qarepvgg: 'v2' });
    const blocks = allBlocks(structure);
    expect(blocks).toHaveLength(19);
    expect(structure.params.total).toBeGreaterThan(1_000_000);
    expect(blocks.filter((b) => b.branches.some((x) => x.role === 'avgPool')).length).toBe(14);

    const plan = planDeploy(model, structure);
    const written = new Map<string, Float32Array>();
    for (const t of plan.tensors) {
      const bytes = await producedBytes(t);
      if (t.dtype === 'float32') written.set(t.name, new Float32Array(bytes.buffer));
    }
    expect(written.size).toBe(19 * 6);

    let worstUlps = 0;
    let exact = 0;
    let total = 0;
    for (const block of blocks) {
      const ref = referenceKernel(block, v);
      for (const [name, want] of [
        ['weight', ref.weight],
        ['bias', ref.bias],
      ] as const) {
        const got = written.get(`${block.name}.rbr_reparam.${name}`)!;
        expect(got).toHaveLength(want.length);
        for (let i = 0; i < want.length; i++) {
          const ulps = Math.abs(got[i] - want[i]) / ulp32(want[i]);
          worstUlps = Math.max(worstUlps, ulps);
          if (got[i] === Math.fround(want[i])) exact++;
          total++;
        }
      }
      for (const p of ['weight', 'bias', 'running_mean', 'running_var'])
        expect(Array.from(written.get(`${block.name}.bn.${p}`)!)).toEqual(Array.from(Float32Array.from(v(`${block.name}.bn.${p}`))));
    }
    expect(total).toBeGreaterThan(900_000);
    expect(worstUlps).toBeLessThanOrEqual(0.5 + 1e-6);
    expect(exact / total).toBeGreaterThan(0.9999);

    // Run the stride-2 stem, a 64-channel block and the widest 256-channel blocks: the train block in float64 against
    // the written float32 conv followed by the kept bn, and against the conv with that bn folded (what graphs use).
    const rand = seededRandom(7);
    for (const name of ['backbone.stem', 'backbone.ERBlock_3.1.conv1', 'backbone.ERBlock_5.0', 'backbone.ERBlock_5.1.block.0']) {
      const block = blocks.find((b) => b.name === name)!;
      const hw = block.stride === 2 ? 8 : 5;
      const x = Float64Array.from({ length: block.inChannels * hw * hw }, () => rand() * 2 - 1);
      const want = blockForward(block, values, x, hw);
      const w = Float64Array.from(written.get(`${name}.rbr_reparam.weight`)!);
      const b = Float64Array.from(written.get(`${name}.rbr_reparam.bias`)!);
      const conv = conv2d(x, [block.inChannels, hw, hw], w, [block.outChannels, block.inChannels / block.groups, 3, 3], b, block.stride!, 1, block.groups);
      const bn = block.postBn!;
      const got = batchNorm(conv.y, block.outChannels, { gamma: v(bn.weight), beta: v(bn.bias), mean: v(bn.mean), var: v(bn.var), eps: bn.eps });
      expect(conv.shape).toEqual(want.shape);
      expect(relMax(want.y, got)).toBeLessThan(2e-6);
      const folded = await fuseBlock(block, async (n) => v(n), { postBn: 'fold' });
      const one = conv2d(x, [block.inChannels, hw, hw], folded.weight, folded.shape, folded.bias, block.stride!, 1, block.groups);
      expect(relMax(want.y, one.y)).toBeLessThan(1e-12);
    }
    expect(performance.now() - started).toBeLessThan(10_000);
  }, 30_000);
});
