import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { mulberry32 } from '../../../src/core/parity/prng';
import { ParityError } from '../../../src/core/parity/errors';
import { checkParity, type ParityOptions, type ParityProgress } from '../../../src/core/parity/parity';
import { roundingControl } from '../../../src/core/parity/tolerance';
import { WorkFolder } from '../../../src/core/parity/workFolder';
import { OnnxBuilder } from '../../../src/core/graph/onnxBuilder';
import { bundleParityWorker, type Bundle } from './bundle';
import { MODELS, TINY } from './faultyFiles';

/**
 * The models a parity check runs are files: a small .onnx with its large initializers in external
 * data beside it, which ONNX Runtime maps (see workFolder.ts). This process's temporary folder is
 * its own (vitest runs each file in its own process), so what a check leaves behind can be seen.
 */
let worker: Bundle & { workerPath: string };
let base: string;
let small: ParityOptions;

beforeAll(async () => {
  worker = await bundleParityWorker();
  base = await mkdtemp(path.join(tmpdir(), 'replens-workfolder-test-'));
  process.env.TMPDIR = base;
  small = { workerPath: worker.workerPath, shape: [1, 3, 32, 32], inputs: 2 };
}, 60_000);
afterAll(async () => {
  await worker?.dispose();
  if (base) await rm(base, { recursive: true, force: true });
});

/** What checks left in the temporary folder (other tools keep their own files there too). */
const leftOver = () => readdirSync(base).filter((n) => n.startsWith('replens-parity-'));

const random = (n: number, seed: number) => {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => next() / 2 ** 32 - 0.5);
};

describe('a model written to the work folder', () => {
  it('keeps small initializers in the model and puts large ones in its data file, 64-byte aligned, as written', async () => {
    const folder = await WorkFolder.create('test');
    try {
      const values = { big: random(3000, 1), odd: random(1027, 2), tiny: random(5, 3) };
      const { path: file, model } = await folder.build('m', async (store) => {
        const g = new OnnxBuilder('test', store);
        const x = g.input('x', [1, 5]);
        let y = x;
        for (const [name, v] of Object.entries(values)) {
          await g.initializer(name, [v.length], v);
          y = g.node('Identity', [y], `${name}/out`);
        }
        g.output(y, [1, 5]);
        return { model: g.finish() };
      });
      const byName = new Map(model.graph!.initializer.map((t) => [t.name, t]));
      expect(byName.get('tiny')!.rawData).toBeInstanceOf(Uint8Array);
      for (const name of ['big', 'odd']) {
        const t = byName.get(name)!;
        expect(t.dataLocation).toBe(1);
        expect(t.externalData.find((e) => e.key === 'location')!.value).toBe('m.onnx.data');
        expect(Number(t.externalData.find((e) => e.key === 'offset')!.value) % 64).toBe(0);
      }
      // The model file holds the graph, not the weights.
      expect(statSync(file).size).toBeLessThan(1024);
      expect(statSync(`${file}.data`).size).toBeGreaterThanOrEqual(4 * (3000 + 1027));

      // RepLens' own ONNX reader resolves the external data: every value comes back as it went in.
      const read = await openModelFile(file);
      try {
        for (const [name, v] of Object.entries(values)) {
          const t = read.tensors.find((x) => x.name === name)!;
          expect(await t.toFloat32()).toEqual(v);
          expect(await folder.read(byName.get(name)!)).toEqual(new Uint8Array(v.buffer));
        }
      } finally {
        await read.close();
      }
    } finally {
      await folder.remove();
    }
    expect(leftOver()).toEqual([]);
  });

  it('the rounding control moves only the named float32 initializers, each by at most u relative, the same way for the same seed', async () => {
    const folder = await WorkFolder.create('test');
    try {
      const values = { w: random(4096, 4), kept: random(4096, 5) };
      const { model } = await folder.build('ref', async (store) => {
        const g = new OnnxBuilder('test', store);
        g.input('x', [1]);
        for (const [name, v] of Object.entries(values)) await g.initializer(name, [v.length], v);
        g.output(g.node('Identity', ['x'], 'y'), [1]);
        return { model: g.finish() };
      });
      const u = 2 ** -11;
      const control = async (seed: number) => {
        const { model: c } = await folder.build(`control${seed}`, async (store) => ({
          model: { ...model, graph: await roundingControl(model.graph!, new Set(['w']), u, seed, (t) => folder.read(t), store) },
        }));
        const [w, kept] = ['w', 'kept'].map((n) => c.graph!.initializer.find((t) => t.name === n)!);
        return { w: new Float32Array((await folder.read(w)).slice().buffer), kept, keptBytes: await folder.read(kept) };
      };
      const a = await control(7);
      const again = await control(7);
      const other = await control(8);
      expect(again.w).toEqual(a.w);
      expect(other.w).not.toEqual(a.w);
      let moved = 0;
      a.w.forEach((v, i) => {
        const rel = Math.abs(v - values.w[i]) / Math.abs(values.w[i]);
        expect(rel).toBeLessThanOrEqual(u * (1 + 1e-6) + 2 ** -24);
        if (v !== values.w[i]) moved++;
      });
      expect(moved).toBeGreaterThan(4000);
      // The initializer not named is the reference's own, in the reference's data file.
      expect(a.kept.externalData.find((e) => e.key === 'location')!.value).toBe('ref.onnx.data');
      expect(a.keptBytes).toEqual(new Uint8Array(values.kept.buffer));
    } finally {
      await folder.remove();
    }
  });
});

describe('the work folder of a parity check', () => {
  it('holds the models while they run, small graphs beside their weights, and is gone when the check ends', async () => {
    const seen: string[][] = [];
    const result = await checkParity(TINY, {
      ...small,
      onProgress: (p: ParityProgress) => {
        if (p.phase !== 'load') return;
        for (const dir of leftOver()) seen.push(readdirSync(path.join(base, dir)).sort());
      },
    });
    expect(result.pass).toBe(true);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[0]).toEqual(['deploy.onnx', 'deploy.onnx.data', 'train.onnx', 'train.onnx.data']);
    expect(leftOver()).toEqual([]);
  });

  it('is gone after a check that fails before the models run, after a cancel, and after an ONNX model fused in memory', async () => {
    const deploy = path.join(MODELS, 'repvgg_tiny_deploy.pth');
    await expect(checkParity(deploy, small)).rejects.toBeInstanceOf(ParityError);
    expect(leftOver()).toEqual([]);

    const controller = new AbortController();
    const cancelled = await checkParity(TINY, { ...small, signal: controller.signal, onProgress: (p) => p.phase === 'sample' && controller.abort() }).catch(
      (e: unknown) => e,
    );
    expect((cancelled as ParityError).code).toBe('cancelled');
    expect(leftOver()).toEqual([]);

    const onnx = await checkParity(path.join(MODELS, 'repvgg_tiny_train_folded.onnx'), small);
    expect(onnx.pass).toBe(true);
    expect(leftOver()).toEqual([]);
    expect(existsSync(base)).toBe(true);
  });
});

describe('a temporary folder without room', () => {
  /** Runs `check` with TMPDIR set to `dir`, then puts it back. */
  async function withTmpdir<T>(dir: string, check: () => Promise<T>): Promise<T> {
    process.env.TMPDIR = dir;
    try {
      return await check();
    } finally {
      process.env.TMPDIR = base;
    }
  }

  it('TMPDIR that is not a folder: an error that names it and says what to do', async () => {
    const notAFolder = path.join(base, 'a-file');
    await writeFile(notAFolder, 'x');
    const error = await withTmpdir(notAFolder, () => checkParity(TINY, small).catch((e: unknown) => e));
    expect(error).toBeInstanceOf(ParityError);
    expect((error as ParityError).code).toBe('io');
    expect((error as Error).message).toContain(`could not make a temporary folder in ${notAFolder}`);
    expect((error as Error).message).toMatch(/set TMPDIR to a writable folder$/);
  });

  // Mounting needs root, which CI and the development machines have.
  it.runIf(process.getuid?.() === 0)('a full disk: an error that says so, and nothing left behind', async () => {
    const full = path.join(base, 'full');
    await mkdir(full);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full]);
    try {
      const error = await withTmpdir(full, () => checkParity(TINY, small).catch((e: unknown) => e));
      expect(error).toBeInstanceOf(ParityError);
      expect((error as ParityError).code).toBe('io');
      expect((error as Error).message).toMatch(
        /could not write the models ONNX Runtime runs to .*\(no space left on the device\); set TMPDIR to a folder with room/,
      );
      expect(readdirSync(full)).toEqual([]);
    } finally {
      execFileSync('umount', [full]);
    }
  });
});
