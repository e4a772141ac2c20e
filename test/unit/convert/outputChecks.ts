import { copyFile, open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { expect, vi, type MockInstance } from 'vitest';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { buildStructure } from '../../../src/core/model/buildStructure';

export const MODELS = path.join(__dirname, '..', '..', 'fixtures', 'models');

/** A copy of a fixture in `dir`, so that tests may delete, truncate or race on it. */
export async function fixtureIn(dir: string, name: string): Promise<string> {
  const target = path.join(dir, name);
  await copyFile(path.join(MODELS, name), target);
  return target;
}

/** Temporary files an interrupted write would have left. */
export async function tempFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.replens-tmp'));
}

/**
 * Checks that `output` reads back with RepLens' own reader as a deploy-form model whose
 * tensors are byte for byte those of `reference` (the same conversion done alone).
 */
export async function expectSameDeployModel(output: string, reference: string): Promise<void> {
  const [out, ref] = [await openModelFile(output), await openModelFile(reference)];
  try {
    expect(buildStructure(out).form).toBe('deploy');
    expect(out.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(ref.tensors.map((t) => [t.name, t.dtype, t.shape]));
    for (const [i, t] of out.tensors.entries())
      expect(Buffer.from(await t.readBytes()).equals(Buffer.from(await ref.tensors[i].readBytes())), t.name).toBe(true);
  } finally {
    await out.close();
    await ref.close();
  }
}

/** The file's bytes now, to compare with later: an input must never change. */
export const bytesOf = (file: string) => readFile(file);

/**
 * Runs `hook` after every fsync of a file handle. writeAtomically fsyncs its temporary file
 * once all data is written, right before moving it into place: the hook acts in that gap.
 */
export async function afterFsync(hook: () => void | Promise<void>): Promise<MockInstance> {
  const probe = await open(__filename, 'r');
  const prototype = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  const sync = prototype.sync;
  return vi.spyOn(prototype, 'sync').mockImplementation(async function (this: FileHandle) {
    await sync.call(this);
    await hook();
  });
}
