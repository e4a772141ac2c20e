import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeOnnxModel } from '../../../src/core/formats/onnxCodec';
import type { OnnxGraph } from '../../../src/core/formats/onnxModel';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { fuseOnnxModel } from '../../../src/core/fuse/onnxFusion';
import { buildStructure } from '../../../src/core/model/buildStructure';
import { allBlocks } from '../../../src/core/model/structure';
import { PEERS, peerManifests } from '../peers/peerManifest';
import { onnxChecker, relativeError, runModel } from '../model/onnxTestKit';

/*
 * Every ONNX export among the peer fixtures (test/fixtures/peers/<peer>/manifest.json: the peer's
 * own model exported by torch, with torch's Add(x, 0), folded BNs, Pad + AveragePool, post-sum BNs),
 * fused in its graph: the blocks the peer's model has, one Conv in place of each with nothing of the
 * block left behind, and the fused model computing the peer's own deploy model's output.
 */

const scratch = mkdtempSync(path.join(tmpdir(), 'replens-onnx-peers-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const fixtures = peerManifests().flatMap((m) => m.fixtures.filter((f) => f.checkpoint === 'onnx').map((f) => ({ ...f, peer: m.peer, input: f.input! })));

it('the peer fixtures include the ONNX exports of MobileOne (apple and timm) and QARepVGG (v1, v2)', () => {
  const names = fixtures.map((f) => `${f.peer}/${f.file}`);
  for (const wanted of ['mobileone/mobileone_tiny.onnx', 'timm/timm_mobileone_tiny.onnx', 'yolov6/tiny_qarepvgg_ema.onnx', 'yolov6/tiny_qarepvggv2_ema.onnx'])
    expect(names).toContain(wanted);
});

/** Node outputs nothing reads (graph outputs aside): what a fusion that forgot a node leaves dangling. */
function dangling(graph: OnnxGraph): string[] {
  const read = new Set([...graph.node.flatMap((n) => n.input), ...graph.output.map((o) => o.name)]);
  return graph.node.filter((n) => n.output.every((o) => o === '' || !read.has(o))).map((n) => n.name ?? n.opType ?? '');
}

describe.each(fixtures.map((f) => [`${f.peer}/${f.file}`, f] as const))('%s', (_, f) => {
  const at = (file: string) => path.join(PEERS, f.peer, file);

  it("finds every block of the peer's model: name, stride, groups, kernel and branches", async () => {
    const m = await openModelFile(at(f.file));
    try {
      const structure = buildStructure(m);
      expect(structure.family).toBe(f.family);
      expect(structure.warnings).toEqual([]);
      const blocks = allBlocks(structure);
      const seen = blocks.map((b) => ({
        name: b.name,
        stride: b.stride,
        groups: b.groups,
        kernel: b.kernel,
        identity: b.branches.some((x) => x.role === 'identity'),
        kxk: b.branches.filter((x) => x.role === 'dense').length,
        scale: b.branches.some((x) => x.role === 'oneByOne'),
        avgPool: b.branches.some((x) => x.role === 'avgPool'),
        postBn: b.postBn !== undefined,
      }));
      expect(seen).toEqual(
        f.blocks.map(({ name, stride, groups, kernel, identity, kxk, scale, avgPool, postBn }) => ({
          name,
          stride,
          groups,
          kernel,
          identity,
          kxk,
          scale,
          avgPool,
          postBn,
        })),
      );
      expect(blocks.every((b) => b.onnx?.fusible)).toBe(true);
    } finally {
      await m.close();
    }
  });

  it("fuses each block into one Conv, leaves nothing of it behind, and computes the peer's deploy output", async () => {
    const m = await openModelFile(at(f.file));
    const io = await openModelFile(at(f.input));
    try {
      const structure = buildStructure(m);
      const blocks = allBlocks(structure);
      const before = m.onnx!.graph!;
      const fusion = await fuseOnnxModel(m, structure);
      const after = fusion.model.graph!;
      expect(fusion.fused).toHaveLength(f.blocks.length);
      const convsIn = blocks.reduce((n, b) => n + b.onnx!.nodes.filter((i) => before.node[i].opType === 'Conv').length, 0);
      const convs = (g: OnnxGraph) => g.node.filter((n) => n.opType === 'Conv').length;
      expect(convs(after)).toBe(convs(before) - convsIn + blocks.length);
      for (const b of blocks) {
        expect(after.node.filter((n) => n.output.includes(b.onnx!.output)).map((n) => [n.opType, n.input[0]])).toEqual([['Conv', b.onnx!.input]]);
      }
      const blockNodeNames = new Set(blocks.flatMap((b) => b.onnx!.nodeNames));
      expect(after.node.filter((n) => blockNodeNames.has(n.name ?? '')).map((n) => n.name)).toEqual([]);
      expect(dangling(after)).toEqual([]);

      const out = path.join(scratch, `${f.peer}-${f.file}`);
      writeFileSync(out, await encodeOnnxModel(fusion.model));
      expect(onnxChecker(out)).toBe('');
      const input = io.tensors.find((t) => t.name === 'input')!;
      const inputName = before.input.find((i) => !before.initializer.some((t) => t.name === i.name))!.name!;
      const ran = await runModel(out, { name: inputName, dims: [...input.shape], data: Float32Array.from(await input.toFloat64()) });
      const expected = io.tensors.filter((t) => t.name.startsWith('output'));
      expect(expected).toHaveLength(after.output.length);
      for (const [i, want] of expected.entries()) {
        const got = ran.get(after.output[i].name!)!;
        expect(relativeError(await want.toFloat64(), got).relative, `${after.output[i].name} vs the peer's ${want.name}`).toBeLessThanOrEqual(1e-5);
      }
    } finally {
      await Promise.all([m.close(), io.close()]);
    }
  });
});
