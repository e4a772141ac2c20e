import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertFile } from '../../../src/core/convert/convert';
import { OutputError } from '../../../src/core/writers/atomicFile';

/**
 * Real file-system faults on small tmpfs mounts: a full disk and a read-only folder.
 * Mounting needs root, which CI and the development machines have.
 */
const isRoot = process.getuid?.() === 0;
const MODELS = path.join(__dirname, '..', '..', 'fixtures', 'models');

describe.runIf(isRoot)('file-system faults while writing', () => {
  let base: string;
  const mounts: string[] = [];
  const tmpfs = async (name: string, options: string) => {
    const where = path.join(base, name);
    await mkdir(where);
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', where]);
    mounts.push(where);
    return where;
  };

  beforeAll(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'replens-faults-'));
  });
  afterAll(async () => {
    for (const m of mounts) execFileSync('umount', [m]);
    await rm(base, { recursive: true, force: true });
  });

  it('disk full: a clear error and no partial file', async () => {
    const full = await tmpfs('full', 'size=160k');
    const input = path.join(full, 'model.pth');
    await copyFile(path.join(MODELS, 'repvgg_tiny_train.pth'), input); // 156 KiB of 160: the output cannot fit
    const error = await convertFile(input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutputError);
    expect((error as Error).message).toMatch(/model\.deploy\.pth: no space left on the device/);
    expect(await readdir(full)).toEqual(['model.pth']);
  });

  it('read-only target folder: a clear error and the input untouched', async () => {
    const readOnly = await tmpfs('ro', 'ro,size=64k');
    const input = path.join(MODELS, 'repvgg_tiny_train.pth');
    const error = await convertFile(input, { output: path.join(readOnly, 'out.pth') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutputError);
    expect((error as Error).message).toMatch(/out\.pth: the folder is not writable/);
    expect(await readdir(readOnly)).toEqual([]);
  });
});
