import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeOnnxModel } from '../../src/core/formats/onnxCodec';
import { convertFile } from '../../src/core/convert/convert';
import { openModelFile } from '../../src/core/formats/openModelFile';
import { buildGraph } from '../../src/core/graph/buildGraph';
import { buildStructure } from '../../src/core/model/buildStructure';
import { runInChild } from '../../src/core/parity/child';
import { Comparison, type Metrics } from '../../src/core/parity/compare';
import { readNpy } from '../../src/core/parity/npy';
import { compareModels } from '../../src/core/parity/parity';
import { NormalRandom } from '../../src/core/parity/prng';
import type { Feed } from '../../src/core/parity/workerMessages';
import { bundle, type Bundle } from '../unit/parity/bundle';
import { npyBytes } from '../unit/parity/npyWriter';

/**
 * The graphs RepLens builds, checked against real PyTorch (Debian's python3-torch) and the
 * onnx package's checker (python3-onnx):
 * - the train-form graph run by ONNX Runtime gives PyTorch's outputs for the same fixture model,
 *   block by block; this proves the graph builder on its own, independent of fusion;
 * - the deploy ONNX that `convert --format onnx` writes, and the train graph, pass onnx.checker.
 */

const MODELS = path.join(__dirname, '..', 'fixtures', 'models');
const PYTHON = '/usr/bin/python3';
const run = promisify(execFile);

const CASES: { fixture: string; file: string; logits: boolean }[] = [
  { fixture: 'repvgg_tiny', file: 'repvgg_tiny_train.pth', logits: true },
  { fixture: 'repvgg_tiny', file: 'repvgg_tiny_fp16.pt', logits: true },
  { fixture: 'repvgg_grouped', file: 'repvgg_grouped_train.pth', logits: true },
  { fixture: 'repvgg_se', file: 'repvgg_se_train.pth', logits: true },
  { fixture: 'backbone_in_detector', file: 'backbone_in_detector.pth', logits: false },
  // The pickled module knows every stride; the bare state dict would leave model.3's unknown.
  { fixture: 'yolov7_repconv', file: 'yolov7_repconv_train.pt', logits: false },
  { fixture: 'timm_repvgg', file: 'timm_repvgg_train.safetensors', logits: true },
  { fixture: 'mobileone', file: 'mobileone_train.pth', logits: true },
  { fixture: 'mmpretrain_repvgg', file: 'mmpretrain_repvgg_train.pth', logits: true },
];

interface CaseResult {
  topology: string;
  /** Per output; peak is max |PyTorch value|. */
  metrics: Record<string, Metrics & { peak: number }>;
  error?: string;
}

let worker: Bundle;
let dir: string;
const results: CaseResult[] = [];

/** ORT with optimizations off, so the graph runs node by node as built. */
async function ortOutputs(model: Uint8Array, feeds: Feed[]): Promise<Map<string, Feed>> {
  const reply = await runInChild(
    { type: 'infer', model: { label: 'train graph', source: { bytes: model } }, feeds, optimization: 'disabled' },
    { subject: 'interop', workerPath: path.join(worker.dir, 'parityWorker.js') },
  );
  return new Map(reply.outputs.map((o) => [o.name, o]));
}

beforeAll(async () => {
  worker = await bundle({ parityWorker: path.join(__dirname, '..', '..', 'src', 'core', 'parity', 'worker.ts') });
  dir = await mkdtemp(path.join(tmpdir(), 'replens-parity-interop-'));
  const manifest = [];
  const graphs: { model: Uint8Array; feeds: Feed[]; topology: string }[] = [];
  for (const [i, c] of CASES.entries()) {
    const file = await openModelFile(path.join(MODELS, c.file));
    try {
      const built = await buildGraph(file, buildStructure(file), { form: 'as-is' });
      const random = new NormalRandom(i);
      const caseDir = path.join(dir, String(i));
      await mkdir(caseDir);
      const inputs: Record<string, string> = {};
      const feeds: Feed[] = [];
      for (const [j, input] of built.inputs.entries()) {
        const dims = built.topology === 'blockwise' ? [2, input.channels, 16, 16] : [2, input.channels, 32, 32];
        const data = random.fill(dims.reduce((a, b) => a * b, 1));
        inputs[input.name] = path.join(caseDir, `input${j}.npy`);
        await writeFile(inputs[input.name], npyBytes(dims, data));
        feeds.push({ name: input.name, dims, data });
      }
      manifest.push({ fixture: c.fixture, train: path.join(MODELS, c.file), topology: built.topology, inputs, blocks: built.blocks, outDir: caseDir });
      graphs.push({ model: await encodeOnnxModel(built.model), feeds, topology: built.topology });
    } finally {
      await file.close();
    }
  }
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  const { stdout } = await run(PYTHON, [path.join(__dirname, 'torch_outputs.py'), path.join(dir, 'manifest.json')], { maxBuffer: 1 << 24 });
  const torch = JSON.parse(stdout) as { outputs?: Record<string, string>; error?: string }[];
  for (const [i, t] of torch.entries()) {
    if (t.error) {
      results.push({ topology: graphs[i].topology, metrics: {}, error: t.error });
      continue;
    }
    const ort = await ortOutputs(graphs[i].model, graphs[i].feeds);
    const metrics: CaseResult['metrics'] = {};
    for (const [name, npy] of Object.entries(t.outputs!)) {
      const want = await readNpy(npy);
      const got = ort.get(name);
      const peak = want.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const c = new Comparison({ atol: 1e-4, rtol: 1e-4 });
      if (got) c.add(want.data, got.data, want.shape, got.dims);
      metrics[name] = { ...c.result(), peak };
    }
    results.push({ topology: graphs[i].topology, metrics });
  }
  console.table(
    results.flatMap((r, i) =>
      Object.entries(r.metrics).map(([name, m]) => ({
        file: CASES[i].file,
        name,
        peak: m.peak.toPrecision(3),
        maxAbs: m.maxAbs.toExponential(2),
        maxAbsOverPeak: (m.maxAbs / m.peak).toExponential(2),
        maxRel: m.maxRel.toExponential(2),
      })),
    ),
  );
}, 300_000);

afterAll(async () => {
  await worker?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the train-form graph in ONNX Runtime gives PyTorch’s outputs', () => {
  CASES.forEach((c, i) => {
    it(`${c.file}: every block${c.logits ? ' and the logits' : ''} within 1e-4 of PyTorch, relative`, () => {
      const r = results[i];
      expect(r.error).toBeUndefined();
      const names = Object.keys(r.metrics);
      expect(names.length).toBeGreaterThan(2);
      expect(names.includes('output')).toBe(c.logits);
      for (const [name, m] of Object.entries(r.metrics)) {
        // Each element within 1e-4 of PyTorch's (relative, with atol 1e-4 in units of the output's RMS)...
        expect({ name, pass: m.pass, error: m.error }).toEqual({ name, pass: true, error: undefined });
        // ...and the largest difference within 1e-4 of the output's largest value.
        expect(m.maxAbs / m.peak).toBeLessThan(1e-4);
      }
    });
  });
});

describe('onnx.checker accepts the graphs', () => {
  const FILES = [
    'repvgg_tiny_train.pth',
    'repvgg_se_train.pth',
    'backbone_in_detector.pth',
    'yolov7_repconv_train_sd.pth',
    'mobileone_train.pth',
    'repvgg_tiny_fp16.pt',
  ];
  let checked: { file: string; ok: boolean; error?: string; irVersion: number; opsets: Record<string, number> }[];
  const written: string[] = [];

  beforeAll(async () => {
    const files: string[] = [];
    for (const [i, f] of FILES.entries()) {
      // The deploy graph exactly as `replens convert --format onnx` writes it...
      const output = path.join(dir, `deploy${i}.onnx`);
      await convertFile(path.join(MODELS, f), { output, format: 'onnx' });
      written.push(output);
      files.push(output);
      // ...and the train graph, which only the parity check runs.
      const model = await openModelFile(path.join(MODELS, f));
      try {
        const train = path.join(dir, `train${i}.onnx`);
        await writeFile(train, await encodeOnnxModel((await buildGraph(model, buildStructure(model), { form: 'as-is' })).model));
        files.push(train);
      } finally {
        await model.close();
      }
    }
    const { stdout } = await run(PYTHON, [path.join(__dirname, 'check_onnx.py'), ...files], { maxBuffer: 1 << 24 });
    checked = JSON.parse(stdout);
  }, 120_000);

  it('full check and strict shape inference pass for every train and deploy graph', () => {
    expect(checked.filter((c) => !c.ok)).toEqual([]);
    expect(checked).toHaveLength(2 * FILES.length);
    for (const c of checked) expect(c).toMatchObject({ irVersion: 7, opsets: { '': 13 } });
  });

  it('the written deploy .onnx files run in ONNX Runtime and match their train checkpoints', async () => {
    for (const [i, f] of FILES.entries()) {
      const r = await compareModels(path.join(MODELS, f), written[i], {
        workerPath: path.join(worker.dir, 'parityWorker.js'),
        shape: f === 'yolov7_repconv_train_sd.pth' ? [1, 32, 32, 32] : [1, 3, 32, 32],
        inputs: 2,
        latencyRuns: 0,
      });
      expect({ file: f, pass: r.pass, blocks: r.blocks.length > 0 }).toEqual({ file: f, pass: true, blocks: true });
    }
  }, 120_000);
});
