import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { OutputError } from '../../../src/core/writers/atomicFile';
import { fileOverview } from '../../../src/extension/overview';
import { convertCancelledText, convertFailedText, openFailedText, readErrorText } from '../../../src/extension/messages';

/*
 * What the extension shows when a file cannot be read or converted. A toast is cut off after a line
 * or two, so the file goes by its base name and the reason follows it at once; the full path stays
 * in the log. Each error here is the real one, from the real code on a real bad file.
 */

vi.mock('vscode', () => import('./vscodeMock').then((m) => m.vscode));
import { vscode } from './vscodeMock';

const { convertToDeploy } = await import('../../../src/extension/commands/convertToDeploy');

const MODELS = path.join(__dirname, '..', '..', 'fixtures', 'models');
const TRUNCATED =
  'the file is truncated: it ends at 93.7 KiB, inside a zip that began as a PyTorch checkpoint (no end-of-central-directory record); re-save or re-download it';

let dir: string;
let truncated: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-toasts-'));
  const bytes = await readFile(path.join(MODELS, 'repvgg_tiny_train.pth'));
  truncated = path.join(dir, 'truncated_train.pth');
  await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});
beforeEach(() => vi.clearAllMocks());

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable('no error'),
    (e: unknown) => e,
  );
const toasts = (fn: { mock: { calls: unknown[][] } }) => fn.mock.calls.map((c) => c[0]);

describe('the extension’s error text', () => {
  it('a conversion that fails: the base name, then the reason; the full path is nowhere in it', async () => {
    const e = await errorOf(openModelFile(truncated));
    expect(convertFailedText(truncated, e)).toBe(`RepLens: could not convert truncated_train.pth: ${TRUNCATED}`);
    // An error about another file (the output) names that one, by its base name.
    const output = path.join(dir, 'out', 'train.deploy.pth');
    expect(convertFailedText(truncated, new OutputError(output, 'is the input file; RepLens never overwrites its input', 'is-input'))).toBe(
      'RepLens: could not convert truncated_train.pth: train.deploy.pth: is the input file; RepLens never overwrites its input',
    );
    // An output that appeared while writing: the CLI's --force means nothing here.
    const raced = new OutputError(
      output,
      'was created by someone else while this output was being written; it was left as it is (use --force to replace it)',
      'exists',
    );
    expect(convertFailedText(truncated, raced)).toBe(
      'RepLens: could not convert truncated_train.pth: train.deploy.pth appeared while it was being written and was left as it is; convert again to replace it',
    );
    expect(convertCancelledText(truncated)).toBe('RepLens: conversion of truncated_train.pth cancelled; nothing was written.');
    // Anything else that is not RepLens' own error still reads as its message.
    expect(convertFailedText(truncated, new Error('out of memory'))).toBe('RepLens: could not convert truncated_train.pth: out of memory');
  });

  it('Convert to Deploy shows those words in its toast, for a truncated file and for a missing one', async () => {
    await convertToDeploy(vscode.Uri.file(truncated), () => undefined);
    const missing = path.join(dir, 'gone.pth');
    await convertToDeploy(vscode.Uri.file(missing), () => undefined);
    expect(toasts(vscode.window.showErrorMessage)).toEqual([
      `RepLens: could not convert truncated_train.pth: ${TRUNCATED}`,
      'RepLens: could not convert gone.pth: file not found',
    ]);
  });

  it('the model editor: the format the file began as, and the reason it cannot be read, which says truncated', async () => {
    const overview = await fileOverview(truncated);
    expect(overview).toMatchObject({ fileName: 'truncated_train.pth', kind: 'torch-zip', kindLabel: 'PyTorch checkpoint (zip)', readError: TRUNCATED });
    expect(overview.structure).toBeUndefined();
    // A safetensors file cut inside its header began as safetensors too (not "not a model file").
    const bytes = await readFile(path.join(MODELS, 'repvgg_tiny_train.safetensors'));
    const header = path.join(dir, 'header_cut.safetensors');
    await writeFile(header, bytes.subarray(0, 1000));
    expect(await fileOverview(header)).toMatchObject({
      kind: 'safetensors',
      readError:
        'the file is truncated: it ends at 1000 B, inside the header of a safetensors file (header claims 8816 bytes, the file has 992 after the length); re-save or re-download it',
    });
  });

  it('the model editor of a file it cannot open at all', async () => {
    const missing = path.join(dir, 'gone.pth');
    const e = await errorOf(fileOverview(missing));
    expect(openFailedText(missing, e)).toBe('Could not open gone.pth: file not found');
    expect(readErrorText(missing, e)).toBe('file not found');
    // The log keeps the full path.
    expect((e as Error).message).toBe(`${missing}: file not found`);
  });
});
