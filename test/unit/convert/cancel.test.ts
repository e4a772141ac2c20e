import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { convertFile } from '../../../src/core/convert/convert';
import { OutputError } from '../../../src/core/writers/atomicFile';
import { afterFsync, bytesOf, fixtureIn } from './outputChecks';

/**
 * Points inside a conversion that have no callback of their own, reached through thin wrappers
 * around the real functions: when the model has been opened, when the writer asks for the last
 * tensor's bytes (checkpoints), when the fused ONNX model has been encoded.
 */
const hooks = vi.hoisted(() => ({
  opened: undefined as (() => void) | undefined,
  lastTensor: undefined as (() => void) | undefined,
  encoded: undefined as (() => void) | undefined,
}));

vi.mock('../../../src/core/formats/openModelFile', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/core/formats/openModelFile')>();
  return {
    ...real,
    openModelFile: async (...args: Parameters<typeof real.openModelFile>) => {
      const model = await real.openModelFile(...args);
      hooks.opened?.();
      return model;
    },
  };
});
vi.mock('../../../src/core/convert/deployPlan', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/core/convert/deployPlan')>();
  return {
    ...real,
    planDeploy: (...args: Parameters<typeof real.planDeploy>) => {
      const plan = real.planDeploy(...args);
      const last = plan.tensors[plan.tensors.length - 1];
      plan.tensors[plan.tensors.length - 1] = {
        ...last,
        bytes: () => {
          hooks.lastTensor?.();
          return last.bytes();
        },
      };
      return plan;
    },
  };
});
vi.mock('../../../src/core/formats/onnxCodec', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/core/formats/onnxCodec')>();
  return {
    ...real,
    encodeOnnxModel: async (...args: Parameters<typeof real.encodeOnnxModel>) => {
      const bytes = await real.encodeOnnxModel(...args);
      hooks.encoded?.();
      return bytes;
    },
  };
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-cancel-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  hooks.opened = hooks.lastTensor = hooks.encoded = undefined;
  await rm(dir, { recursive: true, force: true });
});

const PHASES = [
  'before it starts',
  'while the model is opened',
  'at block 1',
  'at the middle block',
  'at the last block',
  'while the last tensors are written',
  'after the data is written, before the rename',
] as const;
type Phase = (typeof PHASES)[number];

/** Converts `input`, cancelling at `phase`; returns the error and the blocks reported done. */
async function cancelledAt(input: string, phase: Phase): Promise<{ error: unknown; done: number[]; total: number }> {
  const controller = new AbortController();
  const cancel = () => controller.abort();
  const atBlock: Partial<Record<Phase, (done: number, total: number) => boolean>> = {
    'at block 1': (done) => done === 1,
    'at the middle block': (done, total) => done === Math.ceil(total / 2),
    'at the last block': (done, total) => done === total,
  };
  if (phase === 'before it starts') cancel();
  if (phase === 'while the model is opened') hooks.opened = cancel;
  if (phase === 'while the last tensors are written') hooks.lastTensor = hooks.encoded = cancel;
  if (phase === 'after the data is written, before the rename') await afterFsync(cancel);
  const done: number[] = [];
  let total = 0;
  const error = await convertFile(input, {
    signal: controller.signal,
    onProgress: (d, t) => {
      done.push(d);
      total = t;
      if (atBlock[phase]?.(d, t)) cancel();
    },
  }).catch((e: unknown) => e);
  return { error, done, total };
}

describe.each(['repvgg_tiny_train.pth', 'timm_repvgg_train.safetensors', 'repvgg_tiny_train.onnx'])('cancelling the conversion of %s', (name) => {
  it.each(PHASES)('%s: a cancellation error, no output, no temporary file, the input untouched', async (phase) => {
    const input = await fixtureIn(dir, name);
    const inputBytes = await bytesOf(input);
    const { error, done, total } = await cancelledAt(input, phase);

    expect(error).toBeInstanceOf(OutputError);
    expect((error as OutputError).code).toBe('cancelled');
    expect((error as Error).message).toMatch(/: cancelled; nothing was written$/);
    expect(await readdir(dir)).toEqual([name]);
    expect((await bytesOf(input)).equals(inputBytes)).toBe(true);

    // Where the cancel was heard: no block is fused after it, and the late phases were really reached.
    const stoppedAt = {
      'before it starts': 0,
      'while the model is opened': 0,
      'at block 1': 1,
      'at the middle block': Math.ceil(total / 2),
      'at the last block': total,
    }[phase as string];
    if (stoppedAt !== undefined) expect(Math.max(0, ...done)).toBe(stoppedAt);
    else expect(done.length).toBe(total);
    if (phase !== 'before it starts' && phase !== 'while the model is opened') expect(total).toBeGreaterThan(2);
  });
});
