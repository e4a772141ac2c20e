import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInChild } from '../../../src/core/parity/child';
import { ParityError } from '../../../src/core/parity/errors';
import type { InferRequest } from '../../../src/core/parity/workerMessages';

/** Stand-ins for the worker, each misbehaving in one way the real one could. */
const WORKERS: Record<string, string> = {
  exits: `process.on('message', () => { process.stderr.write('onnxruntime: out of memory\\n'); process.exit(3); });`,
  segfaults: `process.on('message', () => process.kill(process.pid, 'SIGSEGV'));`,
  hangs: `process.on('message', () => process.send({ type: 'progress', phase: 'load', done: process.pid, total: 0 }));`,
  refuses: `process.on('message', () => process.send({ type: 'error', subject: 'model.onnx', message: 'ONNX Runtime could not load the model: bad graph' }));`,
  answers: `process.on('message', (m) => { process.send({ type: 'progress', phase: 'load', done: 1, total: 1 }); process.send({ type: 'infer-result', outputs: m.feeds }); });`,
};

let dir: string;
const worker = (name: string) => path.join(dir, `${name}.js`);
const request: InferRequest = {
  type: 'infer',
  model: { label: 'm', source: { path: 'm.onnx' } },
  feeds: [{ name: 'x', dims: [2], data: Float32Array.from([1, 2]) }],
  optimization: 'all',
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-child-'));
  for (const [name, code] of Object.entries(WORKERS)) await writeFile(worker(name), code);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<ParityError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(ParityError);
  return e as ParityError;
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

describe('runInChild', () => {
  it('returns the reply, with typed arrays intact, and reports progress', async () => {
    const progress: number[] = [];
    const reply = await runInChild(request, { subject: 's', workerPath: worker('answers'), onProgress: (m) => progress.push(m.done) });
    expect(reply.outputs[0].data).toBeInstanceOf(Float32Array);
    expect(Array.from(reply.outputs[0].data)).toEqual([1, 2]);
    expect(progress).toEqual([1]);
  });

  it('says when the process exits, with its exit code and last stderr', async () => {
    const e = await failure(runInChild(request, { subject: 'a.pth vs b.pth', workerPath: worker('exits') }));
    expect(e.code).toBe('crashed');
    expect(e.message).toBe('a.pth vs b.pth: the inference process exited with code 3; its last output:\nonnxruntime: out of memory');
  });

  it('says when the process is killed by a signal', async () => {
    const e = await failure(runInChild(request, { subject: 'a.pth', workerPath: worker('segfaults') }));
    expect(e.message).toBe('a.pth: the inference process was killed by SIGSEGV');
  });

  it('passes on the worker’s own error, naming the model', async () => {
    const e = await failure(runInChild(request, { subject: 'a.pth', workerPath: worker('refuses') }));
    expect(e.code).toBe('inference');
    expect(e.message).toBe('model.onnx: ONNX Runtime could not load the model: bad graph');
  });

  it('times out with a clear message', async () => {
    const e = await failure(runInChild(request, { subject: 'a.pth', workerPath: worker('hangs'), timeoutSeconds: 0.5 }));
    expect(e.code).toBe('timeout');
    expect(e.message).toBe('a.pth: inference timed out after 0.5 s');
  });

  it('is cancelled by an AbortSignal, which kills the process', async () => {
    const controller = new AbortController();
    let pid = 0;
    const running = runInChild(request, {
      subject: 'a.pth',
      workerPath: worker('hangs'),
      signal: controller.signal,
      onProgress: (m) => {
        pid = m.done;
        controller.abort();
      },
    });
    const e = await failure(running);
    expect(e.code).toBe('cancelled');
    expect(await gone(pid)).toBe(true);
  });

  it('does not start when already cancelled, and says when the worker bundle is missing', async () => {
    const controller = new AbortController();
    controller.abort();
    expect((await failure(runInChild(request, { subject: 'a', workerPath: worker('answers'), signal: controller.signal }))).code).toBe('cancelled');
    const missing = await failure(runInChild(request, { subject: 'a', workerPath: path.join(dir, 'nope.js') }));
    expect(missing.message).toMatch(/nope\.js is missing \(npm run build makes it\)/);
  });
});
