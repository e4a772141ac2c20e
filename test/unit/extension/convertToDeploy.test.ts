import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fixtureIn } from '../convert/outputChecks';

vi.mock('vscode', () => import('./vscodeMock').then((m) => m.vscode));
import { vscode } from './vscodeMock';

const { convertToDeploy } = await import('../../../src/extension/commands/convertToDeploy');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-command-'));
  vi.clearAllMocks();
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

const messages = (fn: { mock: { calls: unknown[][] } }) => fn.mock.calls.map((c) => c[0]);

describe('Convert to Deploy in the extension', () => {
  it('a second Convert of a file still being converted says so and starts nothing', async () => {
    const input = await fixtureIn(dir, 'repvgg_tiny_train.pth');
    const converted = vi.fn();
    const first = convertToDeploy(vscode.Uri.file(input), converted);
    const second = await convertToDeploy(vscode.Uri.file(input), converted);
    expect(second).toBeUndefined();
    expect(messages(vscode.window.showInformationMessage)).toEqual(['RepLens: repvgg_tiny_train.pth is already being converted.']);

    const result = await first;
    expect(result?.blocksFused).toBe(7);
    expect(converted).toHaveBeenCalledTimes(1);
    expect(messages(vscode.window.showErrorMessage)).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual(['repvgg_tiny_train.deploy.pth', 'repvgg_tiny_train.pth']);
  });

  it('once a conversion has ended, the file can be converted again', async () => {
    const input = await fixtureIn(dir, 'repvgg_tiny_train.pth');
    await convertToDeploy(vscode.Uri.file(input), () => undefined);
    // The output is there now: the command asks before replacing it (and the mock declines).
    expect(await convertToDeploy(vscode.Uri.file(input), () => undefined)).toBeUndefined();
    expect(messages(vscode.window.showWarningMessage)).toEqual(['repvgg_tiny_train.deploy.pth already exists. Replace it?']);
    expect(messages(vscode.window.showInformationMessage).filter((m) => /already being converted/.test(String(m)))).toEqual([]);

    // A failed conversion releases the file too.
    const broken = await fixtureIn(dir, 'truncated_train.pth');
    await convertToDeploy(vscode.Uri.file(broken), () => undefined);
    await convertToDeploy(vscode.Uri.file(broken), () => undefined);
    expect(messages(vscode.window.showErrorMessage)).toHaveLength(2);
    expect(messages(vscode.window.showErrorMessage).every((m) => /could not convert truncated_train\.pth/.test(String(m)))).toBe(true);
  });

  it('with the output format set to onnx, a checkpoint is written as its deploy ONNX graph', async () => {
    const input = await fixtureIn(dir, 'repvgg_tiny_train.pth');
    const settings: Record<string, unknown> = { outputFormat: 'onnx' };
    vi.spyOn(vscode.workspace, 'getConfiguration').mockReturnValue({ get: <T>(key: string, fallback: T) => (settings[key] as T) ?? fallback } as never);
    const result = await convertToDeploy(vscode.Uri.file(input), () => undefined);
    expect(result).toMatchObject({ format: 'onnx', blocksFused: 7, built: { topology: 'classifier' } });
    expect(messages(vscode.window.showErrorMessage)).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual(['repvgg_tiny_train.deploy.onnx', 'repvgg_tiny_train.pth']);
  });
});
