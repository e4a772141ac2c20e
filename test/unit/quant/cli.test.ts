import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../fuse/reference';
import { cliUnderTest } from '../parity/bundle';
import { TINY } from '../parity/faultyFiles';
import { npyBytes } from '../parity/npyWriter';

const cli = cliUnderTest('replens-quant-cli-');
const SMALL = ['--shape', '1,3,32,32', '--inputs', '2'];

const replens = (...args: string[]) => cli.run(args);

describe('replens quantize-check', () => {
  it('prints the outputs and the blocks worst first, and exits 0 without a threshold', async () => {
    const { code, stdout } = await replens('quantize-check', TINY, ...SMALL);
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines[0]).toBe('INT8  repvgg_tiny_train.pth: 2 random input(s) of [1, 3, 32, 32], activations minmax, topology classifier');
    expect(stdout).toMatch(/\n {2}output {2}weights per-tensor {3}error \d+\.\d\d %, cosine 0\.\d{5}, top-1 agreement \d+\.\d\d %\n/);
    expect(stdout).toMatch(/\nblocks, worst first: /);
    expect(lines.filter((l) => /^ {2}stage\d/.test(l))).toHaveLength(7);
  }, 60_000);

  it('--json has the documented schema; --max-error sets the exit code by the per-tensor output error', async () => {
    const { code, stdout } = await replens('quantize-check', TINY, ...SMALL, '--json');
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(Object.keys(r)).toEqual(['file', 'topology', 'inputs', 'shape', 'calibration', 'blocks', 'outputs', 'notes']);
    expect(Object.keys(r.blocks[0])).toEqual([
      'name',
      'int8Error',
      'weightError',
      'activationError',
      'perChannel',
      'activationOutlier',
      'weightOutlier',
      'cause',
      'advice',
    ]);
    expect(Object.keys(r.outputs[0])).toEqual(['name', 'weights', 'relError', 'maxAbs', 'maxRel', 'meanAbs', 'cosine', 'top1Agreement']);
    const error = r.outputs.find((o: { weights: string }) => o.weights === 'per-tensor').relError;
    expect((await replens('quantize-check', TINY, ...SMALL, '--max-error', String(error * 1.01))).code).toBe(0);
    expect((await replens('quantize-check', TINY, ...SMALL, '--max-error', String(error * 0.99))).code).toBe(1);
  }, 60_000);

  it('--calib takes a folder of .npy arrays instead of random inputs', async () => {
    const calib = path.join(cli.dir, 'calib');
    await mkdir(calib, { recursive: true });
    const rand = seededRandom(3);
    for (const name of ['a.npy', 'b.npy', 'c.npy']) {
      await writeFile(
        path.join(calib, name),
        npyBytes(
          [1, 3, 32, 32],
          Float32Array.from({ length: 3 * 32 * 32 }, () => 2 * rand() - 1),
        ),
      );
    }
    await writeFile(path.join(calib, 'notes.txt'), 'not an array');
    const { code, stdout } = await replens('quantize-check', TINY, '--calib', calib, '--calibration', 'percentile', '--json');
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(r.calibration).toEqual({ source: 'files', method: 'percentile', files: ['a.npy', 'b.npy', 'c.npy'].map((n) => path.join(calib, n)) });
    expect(r).toMatchObject({ inputs: 3, shape: [1, 3, 32, 32] });
  }, 60_000);

  it('--calib takes PNG and JPEG images too, made to fit --shape', async () => {
    const photos = path.join(cli.dir, 'photos');
    await mkdir(photos, { recursive: true });
    const rand = seededRandom(5);
    const rgba = (w: number, h: number) => Buffer.from(Uint8Array.from({ length: w * h * 4 }, (_, i) => (i % 4 === 3 ? 255 : Math.floor(256 * rand()))));
    const png = new PNG({ width: 48, height: 40 });
    rgba(48, 40).copy(png.data);
    await writeFile(path.join(photos, 'a.png'), PNG.sync.write(png));
    await writeFile(path.join(photos, 'b.jpg'), jpeg.encode({ width: 64, height: 32, data: rgba(64, 32) }, 90).data);
    const { code, stdout } = await replens('quantize-check', TINY, '--calib', photos, '--shape', '1,3,32,32', '--normalize', 'unit', '--json');
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(r).toMatchObject({ inputs: 2, shape: [1, 3, 32, 32], calibration: { source: 'files', files: ['a.png', 'b.jpg'].map((n) => path.join(photos, n)) } });
    expect(await replens('quantize-check', TINY, '--calib', photos, '--normalize', 'zscore')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--normalize must be one of imagenet, unit/),
    });
  }, 60_000);

  it('says what is wrong with its arguments and its calibration files', async () => {
    expect(await replens('quantize-check', TINY, '--calibration', 'mean')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--calibration must be one of minmax, percentile/),
    });
    const empty = path.join(cli.dir, 'empty');
    await mkdir(empty, { recursive: true });
    expect(await replens('quantize-check', TINY, '--calib', empty)).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/empty: holds no calibration files \(\.npy, \.png, \.jpg, \.jpeg\)/),
    });
    const wrong = path.join(cli.dir, 'wrong.npy');
    await writeFile(wrong, npyBytes([1, 4, 8, 8], new Float32Array(4 * 64)));
    expect(await replens('quantize-check', TINY, '--calib', wrong)).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/wrong\.npy: holds an array of shape \[1, 4, 8, 8\]; the model's input takes \[N, 3, H, W\]/),
    });
    expect(await replens('quantize-check', path.join(cli.dir, 'missing.pth'))).toMatchObject({ code: 1 });
  }, 60_000);
});
