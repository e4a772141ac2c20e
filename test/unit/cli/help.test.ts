import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle, ENTRIES, runCli, type Bundle } from '../parity/bundle';

let built: Bundle;

const replens = (...args: string[]) => runCli(built, args);

beforeAll(async () => {
  built = await bundle(ENTRIES);
}, 60_000);
afterAll(async () => built?.dispose());

describe('replens help', () => {
  for (const command of ['inspect', 'tensors', 'convert', 'parity', 'quantize-check']) {
    it(`${command} --help and -h print that command's usage and exit 0`, async () => {
      for (const flag of ['--help', '-h']) {
        const { code, stdout } = await replens(command, 'model.pth', flag);
        expect(code).toBe(0);
        expect(stdout.startsWith(`Usage: replens ${command} `)).toBe(true);
      }
    });
  }

  it('a --help after -- is a file name, not the flag', async () => {
    const { code, stderr } = await replens('inspect', '--', '--help');
    expect(code).toBe(1);
    expect(stderr).toContain('--help');
  });

  it('names inherited from Object are not commands', async () => {
    const { code, stderr } = await replens('toString');
    expect(code).toBe(2);
    expect(stderr).toBe("replens: unknown command 'toString'. Run 'replens --help'.\n");
  });

  it('stops quietly when the reader has closed the pipe (| head)', async () => {
    const child = spawn(
      process.execPath,
      [path.join(built.dir, 'cli.js'), 'tensors', path.join(__dirname, '..', '..', 'fixtures', 'models', 'repvgg_tiny_wrapped.pth.tar')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    // Our end is closed before the CLI has started, so its first line already meets a closed pipe.
    child.stdout.destroy();
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});

describe('what a state dict cannot say', () => {
  const PEERS = path.join(__dirname, '..', '..', 'fixtures', 'peers');

  it('--weights and --qarepvgg v2 are heard by inspect; a wrong value is a usage error that names the choices', async () => {
    const v2 = path.join(PEERS, 'yolov6', 'tiny_qarepvggv2_ema_state_dict.pth');
    const assumed = await replens('inspect', v2);
    expect(assumed.stdout).toContain('family yolov6-qarepvgg,');
    expect(assumed.stdout).toContain('tell RepLens (--qarepvgg v2)');
    const told = await replens('inspect', v2, '--qarepvgg', 'v2');
    expect(told.code).toBe(0);
    expect(told.stdout).toContain('family yolov6-qarepvgg-v2,');
    expect(told.stdout).not.toContain('tell RepLens (--qarepvgg v2)');
    expect(await replens('inspect', v2, '--qarepvgg', 'v3')).toMatchObject({ code: 2, stderr: expect.stringContaining('--qarepvgg must be v1 or v2') });

    const last = path.join(PEERS, 'yolov7', 'tiny_repconv_last.pt');
    expect((await replens('inspect', last)).stdout).toContain(
      "weights from 'ema': the EMA weights, which YOLO projects evaluate and export when a checkpoint has them (also in the file: 'model'); --weights model reads 'model' instead",
    );
    expect((await replens('inspect', last, '--weights', 'model')).stdout).toContain("weights from 'model': as asked; --weights ema reads 'ema' instead");
    const missing = await replens('inspect', last, '--weights', 'EMA');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("has no weights under 'EMA': its weights are under 'model', 'ema'");
  }, 30_000);
});
