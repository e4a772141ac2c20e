import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParityError } from '../../../src/core/parity/errors';
import { checkParity, compareModels, type ParityOptions, type ParityProgress } from '../../../src/core/parity/parity';
import { bundleParityWorker, type Bundle } from './bundle';
import { MODELS, TINY } from './faultyFiles';

let worker: Bundle & { workerPath: string };
let small: ParityOptions;

beforeAll(async () => {
  worker = await bundleParityWorker();
  small = { workerPath: worker.workerPath, shape: [1, 3, 32, 32], inputs: 2, latencyRuns: 1 };
}, 60_000);
afterAll(async () => {
  await worker?.dispose();
});

/** Inference processes this test process has started and that still exist. */
function inferenceChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The fields after the parenthesised command name: state, then the parent's pid.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === process.pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('parityWorker.js')) pids.push(Number(entry));
    } catch {
      // The process ended while being looked at.
    }
  }
  return pids;
}

/** Waits (up to 10 s) for the processes to be gone; returns those still there. */
async function stillRunning(pids: number[]): Promise<number[]> {
  for (let i = 0; i < 200; i++) {
    const left = pids.filter((pid) => existsSync(`/proc/${pid}`));
    if (left.length === 0) return [];
    await new Promise((r) => setTimeout(r, 50));
  }
  return pids.filter((pid) => existsSync(`/proc/${pid}`));
}

/** Runs checkParity on `file`, cancelling on the first progress report `when` accepts (or before it starts). */
async function cancelled(file: string, when: ((p: ParityProgress) => boolean) | 'before it starts') {
  const controller = new AbortController();
  if (when === 'before it starts') controller.abort();
  const phases: string[] = [];
  let children: number[] = [];
  const error = await checkParity(file, {
    ...small,
    signal: controller.signal,
    onProgress: (p) => {
      phases.push(p.phase);
      if (typeof when === 'function' && !controller.signal.aborted && when(p)) {
        children = inferenceChildren();
        controller.abort();
      }
    },
  }).catch((e: unknown) => e);
  return { error, phases, children };
}

function expectCancelled(error: unknown, file: string): void {
  expect(error).toBeInstanceOf(ParityError);
  expect((error as ParityError).code).toBe('cancelled');
  expect((error as Error).message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*: cancelled$`));
}

describe.each([TINY, path.join(MODELS, 'repvgg_tiny_train.onnx')])('cancelling the parity check of %s', (file) => {
  it('before it starts: nothing is built and no process is started', async () => {
    const { error, phases } = await cancelled(file, 'before it starts');
    expectCancelled(error, file);
    expect(phases).toEqual([]);
    expect(inferenceChildren()).toEqual([]);
  });

  it('while the graphs are built: the inference process is never started', async () => {
    const { error, phases } = await cancelled(file, (p) => p.phase === 'build');
    expectCancelled(error, file);
    expect(phases).toEqual(['build']);
    expect(inferenceChildren()).toEqual([]);
  });

  it.each(['load', 'sample'])(
    'while the models run (%s): the inference process is killed',
    async (phase) => {
      const { error, phases, children } = await cancelled(file, (p) => p.phase === phase);
      expectCancelled(error, file);
      expect(phases.at(-1)).toBe(phase);
      expect(children).toHaveLength(1);
      expect(await stillRunning(children)).toEqual([]);
    },
    30_000,
  );
});

it('compareModels cancelled before it starts builds nothing', async () => {
  const controller = new AbortController();
  controller.abort();
  const error = await compareModels(TINY, path.join(MODELS, 'repvgg_tiny_deploy.pth'), {
    ...small,
    signal: controller.signal,
    onProgress: () => expect.unreachable('no progress after a cancel'),
  }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ParityError);
  expect((error as ParityError).code).toBe('cancelled');
});
