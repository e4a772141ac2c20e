import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertFile, type OutputFormat } from '../../src/core/convert/convert';

/**
 * RepLens' deploy files, loaded by real PyTorch (Debian's python3-torch) with
 * torch.load(weights_only=True) and load_state_dict(strict=True) into the
 * fixture script's own deploy models. A whole-module input's deploy file is
 * written in the same form by default: that one is loaded as the model it
 * pickles and run as it is; with stateDict it is a state dict like the rest.
 */

const MODELS = path.join(__dirname, '..', 'fixtures', 'models');
const PYTHON = '/usr/bin/python3';

/** `module`: the input pickles its model, and so does the deploy file; `stateDict` asks for a state dict instead. */
const CASES: { fixture: string; file: string; format?: OutputFormat; stateDict?: true; module?: true }[] = [
  { fixture: 'repvgg_tiny', file: 'repvgg_tiny_train.pth' },
  { fixture: 'repvgg_tiny', file: 'repvgg_tiny_train_legacy.pth' },
  { fixture: 'repvgg_tiny', file: 'repvgg_tiny_wrapped.pth.tar' },
  { fixture: 'repvgg_tiny', file: 'repvgg_full_module.pt', stateDict: true },
  { fixture: 'repvgg_tiny', file: 'repvgg_full_module.pt', module: true },
  { fixture: 'repvgg_tiny', file: 'repvgg_tiny_fp16.pt' },
  { fixture: 'repvgg_tiny', file: 'repvgg_tiny_train.safetensors' },
  { fixture: 'repvgg_tiny', file: 'repvgg_tiny_train.pth', format: 'safetensors' },
  { fixture: 'repvgg_grouped', file: 'repvgg_grouped_train.pth' },
  { fixture: 'repvgg_se', file: 'repvgg_se_train.pth' },
  { fixture: 'backbone_in_detector', file: 'backbone_in_detector.pth' },
  { fixture: 'yolov7_repconv', file: 'yolov7_repconv_train_sd.pth' },
  { fixture: 'yolov7_repconv', file: 'yolov7_repconv_train.pt', stateDict: true },
  { fixture: 'yolov7_repconv', file: 'yolov7_repconv_train.pt', module: true },
  { fixture: 'timm_repvgg', file: 'timm_repvgg_train.safetensors' },
  { fixture: 'timm_repvgg', file: 'timm_repvgg_train.safetensors', format: 'pth' },
  { fixture: 'mobileone', file: 'mobileone_train.pth' },
  { fixture: 'mmpretrain_repvgg', file: 'mmpretrain_repvgg_train.pth' },
];

interface CaseResult {
  fixture: string;
  deploy: string;
  error?: string;
  weightsOnlyLoad?: boolean;
  trainBranchesLeft?: string[];
  moduleMaxAbs?: number;
  strictLoad?: boolean;
  dtypes?: string[];
  outputMaxAbs?: { replens: number; torchFloat32: number };
  weightMaxAbs?: { replens: number; torchFloat32: number };
}

let dir: string;
let results: CaseResult[];
const converted: boolean[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-interop-'));
  const manifest = [];
  for (const [i, c] of CASES.entries()) {
    const input = path.join(MODELS, c.file);
    const ext = (c.format ?? (c.file.endsWith('.safetensors') ? 'safetensors' : 'pth')) === 'safetensors' ? '.safetensors' : '.pth';
    const output = path.join(dir, `${i}-${c.fixture}${ext}`);
    const result = await convertFile(input, { output, format: c.format, stateDict: c.stateDict });
    manifest.push({ fixture: c.fixture, train: input, deploy: output, module: result.module !== undefined });
    converted.push(result.module !== undefined);
  }
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  const { stdout } = await promisify(execFile)(PYTHON, [path.join(__dirname, 'check_deploy.py'), path.join(dir, 'manifest.json')], { maxBuffer: 1 << 24 });
  results = JSON.parse(stdout) as CaseResult[];
  console.table(
    results.map((r) => ({
      file: CASES[results.indexOf(r)].file,
      out: r.deploy,
      outputErrReplens: r.outputMaxAbs?.replens.toExponential(2),
      outputErrTorch: r.outputMaxAbs?.torchFloat32.toExponential(2),
      weightErrReplens: r.weightMaxAbs?.replens.toExponential(2),
      weightErrTorch: r.weightMaxAbs?.torchFloat32.toExponential(2),
    })),
  );
}, 240_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('PyTorch loads and runs what RepLens writes', () => {
  CASES.forEach((c, i) => {
    const form = c.module ? ' as its pickled model' : c.stateDict ? ' as a state dict' : '';
    it(`${c.file} → ${c.format ?? 'same format'}${form} loads strictly into the ${c.fixture} deploy model and matches`, () => {
      const r = results[i];
      expect(r.error).toBeUndefined();
      expect(converted[i]).toBe(c.module === true);
      if (c.module) {
        // torch.load rebuilds the model in deploy form, and it runs as the exact fusion does.
        expect(r.trainBranchesLeft).toEqual([]);
        expect(r.moduleMaxAbs!).toBeLessThanOrEqual(2 * r.outputMaxAbs!.torchFloat32 + 1e-7);
      } else {
        expect(r.weightsOnlyLoad).toBe(true);
      }
      expect(r.strictLoad).toBe(true);
      // Fused in float64 and rounded once: never further from the exact weights than PyTorch's own float32 fusion.
      expect(r.weightMaxAbs!.replens).toBeLessThanOrEqual(r.weightMaxAbs!.torchFloat32);
      // Outputs go through float32 convolutions on both sides, whose rounding differs run to run of weights;
      // RepLens' deploy model must be as close to the exact result as PyTorch's, within that noise.
      expect(r.outputMaxAbs!.replens).toBeLessThanOrEqual(2 * r.outputMaxAbs!.torchFloat32 + 1e-7);
    });
  });

  it('keeps the input dtype: fp16 files give fp16 deploy weights', () => {
    expect(results[CASES.findIndex((c) => c.file === 'repvgg_tiny_fp16.pt')].dtypes).toEqual(['float16']);
    expect(results[CASES.findIndex((c) => c.file === 'repvgg_tiny_train.pth')].dtypes).toEqual(['float32']);
  });
});
