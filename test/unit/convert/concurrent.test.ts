import { promises as fsPromises } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { convertFile, type ConvertResult } from '../../../src/core/convert/convert';
import { OutputError } from '../../../src/core/writers/atomicFile';
import { afterFsync, bytesOf, expectSameDeployModel, fixtureIn, tempFiles } from './outputChecks';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-concurrent-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

/** Resolves once `n` callers have arrived, so that each of them waits for all the others. */
function barrier(n: number): () => Promise<void> {
  let arrived = 0;
  let release!: () => void;
  const all = new Promise<void>((resolve) => (release = resolve));
  return () => {
    if (++arrived === n) release();
    return all;
  };
}

/** The same conversion done alone, to compare the raced output with. */
async function referenceOf(input: string): Promise<string> {
  const ext = path.extname(input) === '.onnx' ? '.onnx' : path.extname(input) === '.safetensors' ? '.safetensors' : '.pth';
  return (await convertFile(input, { output: path.join(dir, `reference${ext}`) })).output;
}

describe('two conversions of the same file at once', () => {
  it.each(['repvgg_tiny_train.pth', 'timm_repvgg_train.safetensors', 'repvgg_tiny_train.onnx'])(
    '%s without force: exactly one writes the output, the other is told and leaves nothing',
    async (name) => {
      const input = await fixtureIn(dir, name);
      const inputBytes = await bytesOf(input);
      // Both conversions are held at their fsync until the other has arrived there too: both have
      // passed the up-front "output exists" check, and only the final step can decide.
      await afterFsync(barrier(2));
      const settled = await Promise.allSettled([convertFile(input), convertFile(input)]);
      vi.restoreAllMocks();

      const won = settled.filter((s): s is PromiseFulfilledResult<ConvertResult> => s.status === 'fulfilled');
      const lost = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      const error = lost[0].reason as OutputError;
      expect(error).toBeInstanceOf(OutputError);
      expect(error.code).toBe('exists');
      expect(error.message).toBe(
        `${won[0].value.output}: was created by someone else while this output was being written; it was left as it is (use --force to replace it)`,
      );

      expect(await tempFiles(dir)).toEqual([]);
      expect((await bytesOf(input)).equals(inputBytes)).toBe(true);
      await expectSameDeployModel(won[0].value.output, await referenceOf(input));
    },
  );

  it('with force both succeed, and the output is one whole conversion', async () => {
    const input = await fixtureIn(dir, 'repvgg_tiny_train.pth');
    const inputBytes = await bytesOf(input);
    await afterFsync(barrier(2));
    const results = await Promise.all([convertFile(input, { force: true }), convertFile(input, { force: true })]);
    vi.restoreAllMocks();
    expect(results.map((r) => r.output)).toEqual([results[0].output, results[0].output]);
    expect((await stat(results[0].output)).size).toBe(results[0].bytesWritten);
    expect(await tempFiles(dir)).toEqual([]);
    expect((await bytesOf(input)).equals(inputBytes)).toBe(true);
    await expectSameDeployModel(results[0].output, await referenceOf(input));
  });

  it('on a file system without hard links it still converts, and still refuses an existing output', async () => {
    const input = await fixtureIn(dir, 'repvgg_tiny_train.pth');
    const noLinks = vi.spyOn(fsPromises, 'link').mockRejectedValue(Object.assign(new Error('operation not permitted'), { code: 'EPERM' }));
    const result = await convertFile(input);
    expect(noLinks).toHaveBeenCalled();
    expect(await tempFiles(dir)).toEqual([]);
    vi.restoreAllMocks();
    await expectSameDeployModel(result.output, await referenceOf(input));

    // A target that appears after the up-front check is found by the last look before the rename.
    const late = path.join(dir, 'late.pth');
    vi.spyOn(fsPromises, 'link').mockRejectedValue(Object.assign(new Error('operation not permitted'), { code: 'EPERM' }));
    await afterFsync(() => writeFile(late, 'someone else'));
    const error = await convertFile(input, { output: late }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutputError);
    expect((error as OutputError).code).toBe('exists');
    expect(await readFile(late, 'utf8')).toBe('someone else');
    expect(await tempFiles(dir)).toEqual([]);
  });
});
