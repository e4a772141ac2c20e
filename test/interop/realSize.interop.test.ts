import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertFile } from '../../src/core/convert/convert';
import { openModelFile } from '../../src/core/formats/openModelFile';
import { compareModels } from '../../src/core/parity/parity';
import { bundle, type Bundle } from '../unit/parity/bundle';

/**
 * Differential test at real sizes: full RepVGG-A0 and -B1g2 (float32, float16, bfloat16), a YOLOv6-s
 * backbone, a YOLOv7 RepConv stack and MobileOne-S0, with random weights and BN statistics, converted to
 * .pth and .safetensors and checked tensor by tensor against PyTorch's own fusion in float64
 * (check_real_size.py, Debian's python3-torch); the YOLOv7 stack also as a float16 pickled model (written
 * back as one), and MobileOne-S0 also as a torch ONNX export, fused in its graph and run in ONNX Runtime.
 * The fixtures elsewhere are tiny, and a conversion bug that overwrote tensors of 256 KiB to 1 MiB through
 * a reused buffer passed all of them.
 */

const PYTHON = '/usr/bin/python3';
const run = promisify(execFile);

type Format = 'pth' | 'safetensors';
const FORMATS: Format[] = ['pth', 'safetensors'];

interface TensorResult {
  name: string;
  dtype: string;
  bytes: number;
  fused: boolean;
  // Fused tensors, against the float64 fusion; null when not finite.
  nonFinite?: number;
  maxUlps?: number | null;
  relErr?: number | null;
  maxElementRel?: number | null;
  notRoundedOnce?: number;
  // Passed-through tensors, against the train checkpoint.
  identical?: boolean;
  differing?: number;
}

interface CaseResult {
  model: string;
  dtype: string;
  deploy: string;
  error?: undefined;
  blocks: number;
  weightsOnlyLoad?: boolean;
  strictLoad?: boolean;
  /** A pickled model's deploy file: its blocks that still have train branches, and its own output against the state dict's. */
  trainBranchesLeft?: string[];
  moduleVsReplens?: number | null;
  tensors: TensorResult[];
  worst: { name: string; maxUlps: number | null; relErr: number | null };
  outputs: { exactVsTrain: number | null; replensVsRounded: number | null; roundedVsTrain: number | null; replensVsTrain: number | null };
}

const KiB = 1024;
const MiB = 1024 * KiB;
/** Tensor sizes every deploy file must span; the second is where the reused-buffer bug struck. */
const SIZE_CLASSES = [
  { label: '< 256 KiB', min: 0, max: 256 * KiB },
  { label: '256 KiB – 1 MiB', min: 256 * KiB, max: MiB },
  { label: '1 – 4 MiB', min: MiB, max: 4 * MiB },
  { label: '> 4 MiB', min: 4 * MiB, max: Infinity },
];
const inClass = (t: TensorResult, c: (typeof SIZE_CLASSES)[number]) => t.bytes >= c.min && t.bytes < c.max;

const within = (v: number | null | undefined, limit: number) => typeof v === 'number' && v <= limit;

/**
 * A fused tensor is stored in the train file's dtype, every element within one ulp of that dtype of the
 * float64 fusion (rounding once gives at most half of one), and float32 ones within 1e-6 relative, of the
 * tensor's peak and of every element.
 */
function fusedTensorOk(t: TensorResult, dtype: string): boolean {
  return t.dtype === dtype && t.nonFinite === 0 && within(t.maxUlps, 1) && (dtype !== 'float32' || (within(t.relErr, 1e-6) && within(t.maxElementRel, 1e-6)));
}

/** `module`: a YOLO-style checkpoint holding the pickled model, whose deploy file holds it too (.pth only). */
const CHECKPOINTS: { model: string; dtype: string; module?: true }[] = [
  ...['repvgg_a0', 'repvgg_b1g2'].flatMap((model) => ['float32', 'float16', 'bfloat16'].map((dtype) => ({ model, dtype }))),
  { model: 'yolov6s_backbone', dtype: 'float32' },
  { model: 'yolov7_repconv_large', dtype: 'float32' },
  { model: 'yolov7_repconv_large', dtype: 'float16', module: true },
  { model: 'mobileone_s0', dtype: 'float32' },
];
const CASES = CHECKPOINTS.flatMap((c) => (c.module ? ['pth' as const] : FORMATS).map((format) => ({ ...c, format })));
const label = (c: (typeof CASES)[number]) => `${c.model} ${c.dtype}${c.module ? ' pickled model' : ''} → .${c.format}`;
/** Models exported to ONNX by torch, fused in the graph by RepLens. */
const ONNX_MODELS = ['mobileone_s0'];
const onnxTrains = new Map<string, string>();

let dir: string;
/** Per CASES entry: its files, and what check_real_size.py found or why the case went no further. */
const files: { train: string; deploy: string }[] = [];
const results: (CaseResult | { error: string })[] = [];
const indexOf = (model: string, dtype: string, format: Format) =>
  CASES.findIndex((c) => c.model === model && c.dtype === dtype && c.format === format && !c.module);

/** The checker's result for a case, failing the test with the case's error if there is one. */
function checked(i: number): CaseResult {
  const r = results[i];
  expect(r.error, label(CASES[i])).toBeUndefined();
  return r as CaseResult;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-real-size-'));
  let started = performance.now();
  const specs = [...CHECKPOINTS.map((c) => `${c.model}:${c.dtype}${c.module ? ':module' : ''}`), ...ONNX_MODELS.map((m) => `${m}:float32:onnx`)];
  const generated = await run(PYTHON, [path.join(__dirname, 'make_real_size.py'), dir, ...specs]);
  const made = JSON.parse(generated.stdout) as { model: string; dtype: string; form: 'state_dict' | 'module' | 'onnx'; train: string }[];
  for (const t of made) if (t.form === 'onnx') onnxTrains.set(t.model, t.train);
  const trains = made.filter((t) => t.form !== 'onnx');
  const generateSeconds = (performance.now() - started) / 1000;

  started = performance.now();
  const convertSeconds: number[] = [];
  let checkSeconds = 0;
  let checking = Promise.resolve();
  for (const t of trains) {
    const converted: number[] = [];
    for (const [i, c] of CASES.entries()) {
      if (c.model !== t.model || c.dtype !== t.dtype || (c.module ? 'module' : 'state_dict') !== t.form) continue;
      files[i] = { train: t.train, deploy: path.join(dir, `${c.model}_${c.dtype}${c.module ? '_module' : ''}.deploy.${c.format}`) };
      // A failed conversion fails its own case; the others are still checked.
      try {
        convertSeconds[i] = (await convertFile(t.train, { output: files[i].deploy, format: c.format })).seconds;
        converted.push(i);
      } catch (e) {
        results[i] = { error: `convertFile: ${e instanceof Error ? e.message : String(e)}` };
      }
    }
    // PyTorch checks a checkpoint's outputs while the next one converts (conversion keeps to one core);
    // one check at a time, as a float64 B1g2 with its fusion takes a few GB.
    // A failed check is its cases' error, never a rejection left waiting while the next checkpoint converts.
    checking = checking.then(async () => {
      if (converted.length === 0) return;
      const began = performance.now();
      const manifest = path.join(dir, `${t.model}_${t.dtype}_${t.form}.check.json`);
      try {
        await writeFile(manifest, JSON.stringify(converted.map((i) => ({ model: t.model, dtype: t.dtype, module: CASES[i].module === true, ...files[i] }))));
        const { stdout } = await run(PYTHON, [path.join(__dirname, 'check_real_size.py'), manifest], { maxBuffer: 1 << 26 });
        (JSON.parse(stdout) as (CaseResult | { error: string })[]).forEach((r, j) => {
          results[converted[j]] = r;
        });
      } catch (e) {
        for (const i of converted) results[i] = { error: `check_real_size.py: ${e instanceof Error ? e.message : String(e)}` };
      }
      checkSeconds += (performance.now() - began) / 1000;
    });
  }
  await checking;
  const wallSeconds = (performance.now() - started) / 1000;

  console.log(
    `real-size: generate ${generateSeconds.toFixed(1)} s; convert ${convertSeconds.reduce((a, b) => a + b, 0).toFixed(1)} s and check ${checkSeconds.toFixed(1)} s, overlapped in ${wallSeconds.toFixed(1)} s`,
  );
  console.table(
    (results as Partial<CaseResult>[]).map((r, i) => ({
      case: label(CASES[i]),
      convertS: convertSeconds[i]?.toFixed(2),
      error: r.error,
      worstTensor: r.worst?.name,
      worstUlps: r.worst?.maxUlps?.toFixed(3),
      worstRel: r.worst?.relErr?.toExponential(2),
      notRoundedOnce: r.tensors?.reduce((n, t) => n + (t.notRoundedOnce ?? 0), 0),
      passedNotIdentical: r.tensors?.filter((t) => !t.fused && !t.identical).length,
      outExactVsTrain: r.outputs?.exactVsTrain?.toExponential(2),
      outReplensVsRounded: r.outputs?.replensVsRounded?.toExponential(2),
      outRoundedVsTrain: r.outputs?.roundedVsTrain?.toExponential(2),
    })),
  );
}, 900_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('real-size deploy files match PyTorch’s float64 fusion', () => {
  CASES.forEach((c, i) => {
    it(`${label(c)}: loads strictly; fused tensors within an ulp of PyTorch's float64 fusion, the others the train file's bits; outputs agree`, () => {
      const r = checked(i);
      if (c.module) {
        // torch.load rebuilds the pickled model in deploy form; run as it is, it computes what its state dict does.
        expect({ trainBranchesLeft: r.trainBranchesLeft, strictLoad: r.strictLoad }).toEqual({ trainBranchesLeft: [], strictLoad: true });
        expect(r.moduleVsReplens).toBeLessThan(1e-12);
      } else {
        expect({ weightsOnlyLoad: r.weightsOnlyLoad, strictLoad: r.strictLoad }).toEqual({ weightsOnlyLoad: true, strictLoad: true });
      }

      const fused = r.tensors.filter((t) => t.fused);
      expect(r.blocks).toBeGreaterThan(0);
      expect(fused.map((t) => t.name).filter((n) => !/\.(rbr_reparam|reparam_conv)\.(weight|bias)$/.test(n))).toEqual([]);
      expect(fused).toHaveLength(2 * r.blocks);
      expect(fused.filter((t) => !fusedTensorOk(t, c.dtype))).toEqual([]);
      const passed = r.tensors.filter((t) => !t.fused);
      expect(passed.length).toBeGreaterThan(0);
      expect(passed.filter((t) => !t.identical)).toEqual([]);

      // Among the fused tensors, the range of the reused-buffer bug (every size class: the test below).
      expect(fused.some((t) => inClass(t, SIZE_CLASSES[1]))).toBe(true);

      // PyTorch's own float64 fusion reproduces the train model to float64 rounding: the reference is sound.
      expect(r.outputs.exactVsTrain).toBeLessThan(1e-9);
      // RepLens' deploy model against one with the float64 fusion rounded once to the file's dtype, both run in
      // float64. Rounding the float64 fusion once is what RepLens does, so the weights are the same bits
      // (notRoundedOnce) and so are the outputs; the bound leaves room for float64 rounding only. The
      // error of either against the train model (roundedVsTrain, in the table) is what the dtype costs.
      expect(r.outputs.replensVsRounded).toBeLessThan(1e-9);
    });
  });

  it('every tensor size class is in the deploy files of every model', () => {
    for (const model of new Set(CHECKPOINTS.map((c) => c.model))) {
      const tensors = CASES.flatMap((c, i) => (c.model === model ? checked(i).tensors : []));
      // MobileOne-S0's largest tensor (the classifier, 1000 × 1024 float32) is just under 4 MiB.
      const expected = SIZE_CLASSES.filter((s) => model !== 'mobileone_s0' || s.min < 4 * MiB).map((s) => s.label);
      expect(
        SIZE_CLASSES.filter((s) => tensors.some((t) => inClass(t, s))).map((s) => s.label),
        model,
      ).toEqual(expected);
    }
  });

  it("regression: RepVGG-A0 float32 → .pth matches PyTorch's float64 fusion (stage2.1.rbr_reparam.weight was once corrupted)", () => {
    const r = checked(indexOf('repvgg_a0', 'float32', 'pth'));
    const t = r.tensors.find((x) => x.name === 'stage2.1.rbr_reparam.weight')!;
    // 96 × 96 × 3 × 3 float32: inside the size range the reused buffer overwrote.
    expect(inClass(t, SIZE_CLASSES[1])).toBe(true);
    expect({ fused: t.fused, dtype: t.dtype, nonFinite: t.nonFinite }).toEqual({ fused: true, dtype: 'float32', nonFinite: 0 });
    expect(t.maxUlps).toBeLessThanOrEqual(1);
    expect(t.relErr).toBeLessThanOrEqual(1e-6);
    expect(t.maxElementRel).toBeLessThanOrEqual(1e-6);
  });
});

describe('parity of a real-size deploy file', () => {
  let worker: Bundle;
  beforeAll(async () => {
    worker = await bundle({ parityWorker: path.join(__dirname, '..', '..', 'src', 'core', 'parity', 'worker.ts') });
  }, 120_000);
  afterAll(async () => {
    await worker?.dispose();
  });

  it.each(ONNX_MODELS)(
    '%s exported to ONNX by torch: every block fused into one Conv in the graph, and parity passes block by block',
    async (model) => {
      const train = onnxTrains.get(model)!;
      const deploy = train.replace(/\.onnx$/, '.deploy.onnx');
      const blocks = checked(indexOf(model, 'float32', 'pth')).blocks;
      const converted = await convertFile(train, { output: deploy });
      expect({ fused: converted.blocksFused, warnings: converted.warnings }).toEqual({ fused: blocks, warnings: [] });
      const r = await compareModels(train, deploy, { workerPath: path.join(worker.dir, 'parityWorker.js'), inputs: 2, latencyRuns: 0 });
      expect(r.blocks.filter((b) => !b.pass)).toEqual([]);
      expect(r.blocks).toHaveLength(blocks);
      expect(r.pass).toBe(true);
    },
    300_000,
  );

  it("RepVGG-A0 float32 → ONNX (convert --format onnx): every fused initializer is bit for bit the .pth's, which matches PyTorch's float64 fusion", async () => {
    const i = indexOf('repvgg_a0', 'float32', 'pth');
    const blocks = checked(i).blocks;
    const { train, deploy } = files[i];
    const exported = await convertFile(train, { output: deploy.replace(/\.pth$/, '.onnx'), format: 'onnx' });
    expect({ fused: exported.blocksFused, topology: exported.built?.topology }).toEqual({ fused: blocks, topology: 'classifier' });
    const [onnx, pth] = await Promise.all([openModelFile(exported.output), openModelFile(deploy)]);
    try {
      const fromPth = new Map(pth.tensors.map((t) => [t.name, t]));
      const fused = onnx.tensors.filter((t) => t.name.includes('.rbr_reparam.'));
      expect(fused).toHaveLength(2 * blocks);
      for (const t of fused) {
        const want = fromPth.get(t.name)!;
        expect({ name: t.name, dtype: t.dtype, shape: t.shape }).toEqual({ name: want.name, dtype: want.dtype, shape: want.shape });
        expect(Buffer.compare(Buffer.from(await t.readBytes()), Buffer.from(await want.readBytes())), t.name).toBe(0);
      }
    } finally {
      await Promise.all([onnx.close(), pth.close()]);
    }
  }, 300_000);

  it('compareModels(train, deploy) passes for RepVGG-A0 float32 → .pth, block by block', async () => {
    const i = indexOf('repvgg_a0', 'float32', 'pth');
    const blocks = checked(i).blocks;
    const { train, deploy } = files[i];
    const r = await compareModels(train, deploy, { workerPath: path.join(worker.dir, 'parityWorker.js'), shape: [1, 3, 64, 64], inputs: 2, latencyRuns: 0 });
    expect(r.outputs.map((o) => ({ name: o.name, pass: o.pass }))).toEqual([{ name: 'output', pass: true }]);
    expect(r.blocks.filter((b) => !b.pass)).toEqual([]);
    expect(r.blocks).toHaveLength(blocks);
    expect(r.pass).toBe(true);
  }, 300_000);
});
