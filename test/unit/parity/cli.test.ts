import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeOnnxModel } from '../../../src/core/formats/onnxCodec';
import { allBlocks } from '../../../src/core/model/structure';
import { cliUnderTest } from './bundle';
import { MODELS, TINY, wrongDeployFile, wrongFusedOnnx } from './faultyFiles';

/**
 * The CLI and the worker bundled side by side, as in dist/: the CLI finds the worker beside
 * itself, exactly as the packaged CLI and extension do.
 */
const cli = cliUnderTest('replens-parity-cli-');
const SMALL = ['--shape', '1,3,32,32', '--inputs', '2', '--latency-runs', '1'];
const FOLDED = path.join(MODELS, 'repvgg_tiny_train_folded.onnx');

const replens = (...args: string[]) => cli.run(args);

describe('replens parity', () => {
  it('prints PASS with the per-block table and exits 0', async () => {
    const { code, stdout } = await replens('parity', TINY, ...SMALL);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^PASS {2}repvgg_tiny_train\.pth, train vs deploy: 2 random input\(s\), seed 0, atol 0\.0001, rtol 0\.001, topology classifier/);
    expect(stdout).toMatch(/^stage3\.1 .* PASS$/m);
    expect(stdout).toMatch(/^train +[\d.]+ ms +31,322 +235,840 +49$/m);
    expect(stdout).toMatch(/^deploy +[\d.]+ ms +27,762 +212,288 +17$/m);
  }, 30_000);

  it('--json prints the result object', async () => {
    const { code, stdout } = await replens('parity', TINY, ...SMALL, '--seed', '3', '--atol', '1e-5', '--json');
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(r).toMatchObject({ pass: true, inputs: 2, atol: 1e-5, rtol: 1e-3, seed: 3 });
    expect(r.blocks).toHaveLength(7);
  }, 30_000);

  it('exits 1 and names the first failing block when --deploy OTHER differs', async () => {
    const bad = await wrongDeployFile(cli.dir, 'bad.pth', (s) => {
      const block = allBlocks(s).find((b) => b.name === 'stage2.1')!;
      block.branches = block.branches.filter((b) => b.role !== 'identity');
    });
    const { code, stdout } = await replens('parity', TINY, '--deploy', bad, ...SMALL);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^FAIL {2}repvgg_tiny_train\.pth vs bad\.pth/);
    expect(stdout).toMatch(/^stage2\.1 .* FAIL$/m);
    expect(stdout).toContain('first failing block: stage2.1 (the blocks before it pass)');
  }, 30_000);

  it('rejects bad options with exit code 2', async () => {
    expect((await replens('parity', TINY, '--shape', '1,3,32')).code).toBe(2);
    expect((await replens('parity', TINY, '--inputs', '0')).code).toBe(2);
    expect((await replens('convert', TINY, '--inputs', '2')).stderr).toContain('--inputs needs --parity');
  });
});

describe('replens convert --format onnx / --parity', () => {
  it('writes the deploy graph as .onnx and checks it against the input', async () => {
    const output = path.join(cli.dir, 'tiny.onnx');
    const { code, stdout } = await replens('convert', TINY, '--format', 'onnx', '-o', output, '--parity', ...SMALL);
    expect(code).toBe(0);
    expect(stdout).toMatch(/tiny\.onnx: ONNX graph \(classifier\) with 7 fused block\(s\)/);
    expect(stdout).toMatch(/^PASS {2}repvgg_tiny_train\.pth vs tiny\.onnx/m);
    const model = decodeOnnxModel(await readFile(output));
    expect(model.opsetImport[0].version).toBe(13);
    expect(model.graph!.node.filter((n) => n.opType === 'Conv')).toHaveLength(7);
    expect(model.graph!.node.some((n) => n.opType === 'BatchNormalization')).toBe(false);
  }, 30_000);

  it('convert --parity --json adds the parity result to the summary; a wrong eps exits 1', async () => {
    const output = path.join(cli.dir, 'eps.pth');
    const { code, stdout } = await replens('convert', TINY, '-o', output, '--eps', '0.01', '--parity', ...SMALL, '--json');
    // --eps applies to both sides, so the comparison is of like with like and passes.
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ output, blocksFused: 7, parity: { pass: true } });
    const { code: failed, stdout: report } = await replens('parity', TINY, '--deploy', output, ...SMALL);
    expect(failed).toBe(1);
    expect(report).toContain('first failing block: stage0');
  }, 30_000);

  it("convert model.onnx --parity compares every block; the written file keeps only the model's own output", async () => {
    const output = path.join(cli.dir, 'folded.deploy.onnx');
    const { code, stdout } = await replens('convert', FOLDED, '-o', output, '--parity', ...SMALL, '--json');
    expect(code).toBe(0);
    const { parity } = JSON.parse(stdout);
    expect(parity).toMatchObject({ pass: true, topology: 'onnx' });
    expect(parity.blocks.map((b: { name: string; pass: boolean }) => [b.name, b.pass])).toEqual(
      ['stage0', 'stage1.0', 'stage2.0', 'stage2.1', 'stage3.0', 'stage3.1', 'stage4.0'].map((b) => [b, true]),
    );
    expect(decodeOnnxModel(await readFile(output)).graph!.output.map((o) => o.name)).toEqual(['output']);
  }, 30_000);
});

describe('replens parity with ONNX files', () => {
  it('a.onnx --deploy b.onnx names the first failing block of a wrong fusion', async () => {
    const bad = await wrongFusedOnnx(cli.dir, 'bad.onnx', FOLDED, (s) => {
      const block = allBlocks(s).find((b) => b.name === 'stage3.1')!;
      block.branches = block.branches.filter((b) => b.role !== 'identity');
    });
    const { code, stdout } = await replens('parity', FOLDED, '--deploy', bad, ...SMALL);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^stage3\.0 .* PASS$/m);
    expect(stdout).toMatch(/^stage3\.1 .* FAIL$/m);
    expect(stdout).toContain('first failing block: stage3.1 (the blocks before it pass)');
  }, 30_000);

  it('model.onnx (BN folded by the exporter) prints a block table', async () => {
    const { code, stdout } = await replens('parity', FOLDED, ...SMALL);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^PASS {2}repvgg_tiny_train_folded\.onnx, train vs deploy: .* topology onnx/);
    expect(stdout).toMatch(/^stage2\.1 .* PASS$/m);
  }, 30_000);
});

describe('replens parity says what part of the model it checks', () => {
  // A training checkpoint written by YOLOv7's own train.py (test/fixtures/peers/yolov7): a pickled models.yolo.Model.
  const YOLOV7 = path.join(__dirname, '..', '..', 'fixtures', 'peers', 'yolov7', 'tiny_repconv_last.pt');
  const SCOPE = "checks the 5 RepConv blocks, each on its own input; the detector's other layers are not in the file as a graph";

  it("a YOLOv7 training checkpoint without --shape: the scope line, and how --shape maps onto the blocks' inputs", async () => {
    const { code, stdout } = await replens('parity', YOLOV7, '--inputs', '2', '--latency-runs', '0');
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines[0]).toMatch(/^PASS {2}tiny_repconv_last\.pt, train vs deploy: .* topology blockwise$/);
    expect(lines[1]).toBe('  tolerance  the float32 defaults: a float32 deploy file differs from its train form by float32 rounding only');
    expect(lines[2]).toBe(`  scope      ${SCOPE}`);
    expect(stdout).toContain('  inputs     model.2:input [1, 16, 32, 32]; model.3:input [1, 16, 32, 32]; model.4:input [1, 16, 32, 32]; …\n');
    expect(stdout).toContain(
      "             --shape describes the blocks' inputs, not the image the whole model takes: its batch, height and width are used for every block's input",
    );
  }, 30_000);

  it('--json carries the sentence and the shape rule', async () => {
    const { code, stdout } = await replens('parity', YOLOV7, '--inputs', '1', '--latency-runs', '0', '--json');
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(r).toMatchObject({ topology: 'blockwise', scope: SCOPE });
    expect(r.shapeUse).toMatch(/^--shape describes the blocks' inputs/);
  }, 30_000);

  it("--shape 1,3,64,64 (the detector's image) exits 1 with the explained error, not a bare dimension mismatch", async () => {
    const { code, stdout, stderr } = await replens('parity', YOLOV7, '--shape', '1,3,64,64');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      'replens: tiny_repconv_last.pt: --shape 1,3,64,64 asks for 3 channels, but the part of the model this check runs starts at model.2, a RepConv block that takes 16 channels. ' +
        `RepLens ${SCOPE}. --shape describes the blocks' inputs, not the image the whole model takes: its batch, height and width are used for every block's input, ` +
        'each block with its own channels (model.2 16, model.3 16, model.4 16, model.8 40, model.9 24), and its channels must be those of the first block, model.2: [batch, 16, height, width]. ' +
        `Pass --shape 1,16,64,64\n  file: ${YOLOV7}\n`,
    );
    expect(stderr).not.toContain('in dimension 1');
  }, 30_000);

  it('a classifier: the whole model, and no shape rule line (its input is the image)', async () => {
    const { stdout } = await replens('parity', TINY, ...SMALL);
    expect(stdout.split('\n')[2]).toBe('  scope      checks the whole model: the 7 RepVGG blocks in a chain, then the classifier (linear)');
    expect(stdout).not.toContain('--shape describes');
  }, 30_000);

  it('convert --parity prints the scope of the check it runs', async () => {
    const output = path.join(cli.dir, 'yolo.deploy.pt');
    const { code, stdout } = await replens('convert', YOLOV7, '-o', output, '--dtype', 'float32', '--parity', '--inputs', '1', '--latency-runs', '0');
    expect(code).toBe(0);
    expect(stdout).toContain(`\n  scope      ${SCOPE}\n`);
  }, 30_000);

  it('a float16 deploy file is judged by what float16 can hold: PASS, and the tolerance says why', async () => {
    const output = path.join(cli.dir, 'yolo-fp16.deploy.pt');
    const { code, stdout } = await replens('convert', YOLOV7, '-o', output, '--parity', '--inputs', '2', '--latency-runs', '0');
    expect(code).toBe(0);
    expect(stdout).toMatch(/\nPASS {2}tiny_repconv_last\.pt vs yolo-fp16\.deploy\.pt: .*, atol 0\.0\d+, rtol 0\.0\d+, topology blockwise\n/);
    expect(stdout).toMatch(
      /\n {2}tolerance {2}the deploy weights are float16, which holds 11 significant bits: the train form with every block weight moved by up to one float16 rounding \(±4\.9e-4 relative, seeded\) differs from itself by up to \d\.\de-\d of an output's RMS, so the deploy file may differ by 4× that/,
    );
    // The float32 defaults alone fail it: the measured tolerance is what makes it pass.
    const strict = await replens('parity', YOLOV7, '--deploy', output, '--inputs', '2', '--latency-runs', '0', '--atol', '1e-4', '--rtol', '1e-3');
    expect(strict.code).toBe(1);
    expect(strict.stdout).toMatch(
      /^FAIL .*\n {2}what next {2}The deploy weights are float16 \(worst: model\.\d, max rel [\d.]+e-3 against rtol 1\.0e-3\)\. Convert again with --dtype float32/,
    );
  }, 30_000);

  it('a wrong float16 deploy file still fails, and the FAIL says what to do', async () => {
    const output = path.join(cli.dir, 'yolo-fp16-wrong-eps.deploy.pt');
    // Fused with BN eps 0.1 where the model was trained with 1e-3: wrong by far more than float16 rounding.
    expect((await replens('convert', YOLOV7, '-o', output, '--eps', '0.1')).code).toBe(0);
    const { code, stdout } = await replens('parity', YOLOV7, '--deploy', output, '--inputs', '2', '--latency-runs', '0');
    expect(code).toBe(1);
    expect(stdout).toMatch(
      /^FAIL .*\n {2}what next {2}The deploy weights are float16 \(worst: model\.\d, max rel [\d.]+e-\d against rtol [\d.]+e-2\)\. Convert again with --dtype float32 and check that file/,
    );
  }, 30_000);
});
