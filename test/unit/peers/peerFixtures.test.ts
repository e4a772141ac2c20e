import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { convertFile } from '../../../src/core/convert/convert';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { inspectFile } from '../../../src/core/inspect';
import { planDeploy } from '../../../src/core/convert/deployPlan';
import type { ModelFile } from '../../../src/core/formats/modelFile';
import type { DType, Tensor } from '../../../src/core/formats/tensor';
import { buildStructure } from '../../../src/core/model/buildStructure';
import { allBlocks, type Block } from '../../../src/core/model/structure';
import { PEERS, peerManifests, type PeerBlock } from './peerManifest';

/*
 * Fixtures made by each family's own published code at a pinned commit, with that project's own
 * reparameterization as the oracle (test/fixtures/peers: fetch_peers.py, make_<peer>.py). RepLens
 * must find the blocks the peer's model has, fuse them to what the peer computed, write exactly
 * the keys and shapes the peer's deploy model has (what load_state_dict(strict=True) checks), at the
 * fixtures' size and, from names and shapes alone, at full size. The peers' ONNX exports are
 * checked in test/unit/fuse/onnxPeerExports.test.ts.
 */

// About 60 conversions and ONNX runs; a busy 2-core machine takes seconds for some.
vi.setConfig({ testTimeout: 60_000 });

const manifests = peerManifests();

interface FullSizeStructure {
  train: [string, number[], string][];
  deploy: [string, number[]][];
  blocks: PeerBlock[];
}

/**
 * What the peer's manifest says of a block, as RepLens' structure has it. A plain state dict does not
 * store a stride; where nothing in it (an identity branch, the family's stage convention) implies one,
 * RepLens says it does not know (null), which is then compared as the peer's own value.
 */
function asPeerSees(b: Block, peer: PeerBlock | undefined, plain: boolean): Omit<PeerBlock, 'kind'> {
  const has = (role: string) => b.branches.some((br) => br.role === role);
  return {
    name: b.name,
    in: b.inChannels,
    out: b.outChannels,
    stride: b.stride ?? (plain && peer ? peer.stride : -1),
    groups: b.groups,
    kernel: b.kernel,
    identity: has('identity'),
    kxk: b.branches.filter((br) => br.role === 'dense').length,
    scale: has('oneByOne'),
    avgPool: has('avgPool'),
    postBn: b.postBn !== undefined,
  };
}

/** The spacing of float16 values at |x| (fixed below the smallest normal). */
function ulp16(x: number): number {
  const a = Math.abs(x);
  return a < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(a)) - 10);
}

async function values(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.toFloat64());
}

/** A plain state dict cannot show QARepVGGBlockV2's AvgPool branch; its users say which block it is. */
const qarepvggOf = (f: { checkpoint: string; family: string }) => (f.checkpoint !== 'onnx' && f.family === 'yolov6-qarepvgg-v2' ? ('v2' as const) : undefined);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-peers-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('has fixtures from every peer family', () => {
  expect(manifests.map((m) => m.peer).sort()).toEqual(['mmpretrain', 'mobileone', 'repvgg', 'timm', 'yolov6', 'yolov7']);
  for (const m of manifests) expect(m.commit, m.peer).toMatch(/^[0-9a-f]{40}$/);
});

describe.each(manifests.map((m) => [`${m.peer} (${m.repo}@${m.commit.slice(0, 12)})`, m] as const))('%s', (_, manifest) => {
  const at = (file: string) => path.join(PEERS, manifest.peer, file);
  const checkpoints = manifest.fixtures.filter((f) => f.checkpoint !== 'onnx');

  it.each(checkpoints.map((f) => [f.file, f] as const))("%s: finds the peer's blocks with their stride, groups and branches", async (_, f) => {
    const { structure, weights } = await inspectFile(at(f.file), { qarepvgg: qarepvggOf(f) });
    expect(structure.family).toBe(f.family);
    expect(weights?.key ?? null).toBe(f.weights);
    expect(weights?.slots.map((s) => s.key) ?? []).toEqual(f.slots);
    const plain = f.checkpoint === 'state_dict';
    expect(allBlocks(structure).map((b, i) => asPeerSees(b, f.blocks[i], plain))).toEqual(f.blocks.map(({ kind: _kind, ...facts }) => facts));
  });

  it.each(checkpoints.map((f) => [f.file, f] as const))(
    "%s: the deploy file has the peer's deploy keys and shapes, and the peer's fused values",
    async (_, f) => {
      const output = path.join(dir, `${manifest.peer}-${f.file}.deploy.pth`);
      // The generator builds YOLOv6's EfficientRep without YOLOv6's initialize_weights, so its BNs keep torch's eps 1e-5.
      await convertFile(at(f.file), {
        output,
        qarepvgg: qarepvggOf(f),
        eps: f.checkpoint === 'state_dict' && f.family.startsWith('yolov6-qarepvgg') ? 1e-5 : undefined,
      });
      const [input, ours, theirs] = await Promise.all([openModelFile(at(f.file)), openModelFile(output), openModelFile(at(f.expected!))]);
      try {
        // load_state_dict(strict=True) needs exactly these keys, each with this shape.
        const keyed = (m: typeof ours) => Object.fromEntries(m.tensors.map((t) => [t.name, t.shape]));
        expect(keyed(ours)).toEqual(keyed(theirs));
        const stored = new Set(input.tensors.map((t) => t.name));
        const byName = new Map(theirs.tensors.map((t) => [t.name, t]));
        for (const t of ours.tensors) {
          const [got, want] = await Promise.all([values(t), values(byName.get(t.name)!)]);
          if (stored.has(t.name)) {
            // A tensor the input has is written as it is (the expected file holds it upcast exactly).
            expect(got, t.name).toEqual(want);
            continue;
          }
          expect(t.dtype, t.name).toBe(f.dtype);
          let worst = 0;
          for (let i = 0; i < want.length; i++) {
            // float32: within 1e-6 of the tensor's largest value; 16-bit: one rounding of the peer's value.
            const allowed = f.dtype === 'float32' ? 1e-6 * Math.max(...want.map(Math.abs)) : ulp16(want[i]);
            worst = Math.max(worst, Math.abs(got[i] - want[i]) / allowed);
          }
          expect(worst, `${t.name}: error in units of the allowed error`).toBeLessThanOrEqual(1);
        }
      } finally {
        await Promise.all([input.close(), ours.close(), theirs.close()]);
      }
      // Read again, as a state dict too, the deploy file says its family: a deploy block's names are shared.
      const flat = path.join(dir, `${manifest.peer}-${f.file}.state-dict.pth`);
      await convertFile(at(f.file), {
        output: flat,
        stateDict: true,
        qarepvgg: qarepvggOf(f),
        eps: f.checkpoint === 'state_dict' && f.family.startsWith('yolov6-qarepvgg') ? 1e-5 : undefined,
      });
      for (const file of [output, flat]) {
        const { structure } = await inspectFile(file, { qarepvgg: qarepvggOf(f) });
        expect({ file: path.basename(file), family: structure.family, forms: [...new Set(allBlocks(structure).map((b) => b.form))] }).toEqual({
          file: path.basename(file),
          family: f.family,
          forms: ['deploy'],
        });
      }
    },
  );

  it.each(checkpoints.map((f) => [f.file, f] as const))("%s: a pickled model is written back as the peer's model in deploy form", async (_, f) => {
    const output = path.join(dir, `${manifest.peer}-${f.file}.module.pth`);
    const result = await convertFile(at(f.file), { output, qarepvgg: qarepvggOf(f) });
    const [input, ours] = await Promise.all([openModelFile(at(f.file)), openModelFile(output)]);
    try {
      if (!input.pickled) {
        expect(result.module).toBeUndefined();
        expect(ours.pickled).toBeUndefined();
        return;
      }
      // YOLO loaders read ckpt['ema'] or else ckpt['model']: the deploy model is under 'model', alone.
      expect(result.module).toEqual({ className: input.pickled.module.className, key: 'model' });
      expect(ours.weights?.slots).toEqual([{ key: 'model', holds: 'module' }]);
      const byPath = (m: typeof ours) => new Map((m.modules ?? []).map((x) => [x.path, x]));
      const [before, after] = [byPath(input), byPath(ours)];
      const blockPaths = f.blocks.map((b) => b.name);
      const inBlock = (p: string) => blockPaths.find((b) => p === b || p.startsWith(`${b}.`));
      for (const b of f.blocks) {
        // As the peer's own switch_to_deploy / fuse_repvgg_block leaves it: one conv with bias, flagged deploy, no train branches.
        expect(after.get(b.name)?.attributes.deploy, b.name).toBe(true);
        expect(after.get(`${b.name}.rbr_reparam`)?.className, b.name).toBe('torch.nn.modules.conv.Conv2d');
        expect(
          [...after.keys()].filter((p) => /\.(rbr_dense|rbr_1x1)(\.|$)/.test(p) && inBlock(p) === b.name),
          b.name,
        ).toEqual([]);
        expect(
          ours.tensors.some((t) => t.name === `${b.name}.rbr_reparam.bias`),
          b.name,
        ).toBe(true);
      }
      // Every module outside the blocks is the input's, class and attributes.
      for (const [p, m] of before) if (!inBlock(p)) expect(after.get(p), p).toEqual(m);
      // Read again, the deploy file says its family (a deploy block's tensor names are RepVGG's; its class is not).
      const again = await inspectFile(output, { qarepvgg: qarepvggOf(f) });
      expect(again.structure.family).toBe(f.family);
      expect(allBlocks(again.structure).every((b) => b.form === 'deploy')).toBe(true);
    } finally {
      await Promise.all([input.close(), ours.close()]);
    }
  });

  it.each((manifest.fullSize ?? []).map((f) => [f.file, f] as const))(
    "%s: at full size, RepLens finds the peer's blocks and plans exactly the peer's deploy keys and shapes",
    (_, f) => {
      const spec = JSON.parse(readFileSync(at(f.file), 'utf8')) as FullSizeStructure;
      // Names, dtypes and shapes are all that structure and the deploy plan read; no tensor is read here.
      const tensors = spec.train.map(([name, shape, dtype]) => ({ name, shape, dtype: dtype as DType }) as unknown as Tensor);
      const model = { path: f.file, format: 'torch-zip', tensors, metadata: {}, warnings: [], close: async () => undefined } as ModelFile;
      const structure = buildStructure(model, { qarepvgg: f.what.includes("'qarepvggv2'") ? 'v2' : undefined });
      expect(allBlocks(structure).map((b, i) => asPeerSees(b, spec.blocks[i], true))).toEqual(spec.blocks.map(({ kind: _kind, ...facts }) => facts));
      const planned = Object.fromEntries(planDeploy(model, structure).tensors.map((t) => [t.name, [...t.shape]]));
      expect(planned).toEqual(Object.fromEntries(spec.deploy));
    },
  );
});
