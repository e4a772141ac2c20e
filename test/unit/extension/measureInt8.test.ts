import { mkdir, symlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { fixtureIn } from '../convert/outputChecks';
import { seededRandom } from '../fuse/reference';
import { parityWorkerUnderTest } from '../parity/bundle';
import { npyBytes } from '../parity/npyWriter';

vi.mock('vscode', () => import('./vscodeMock').then((m) => m.vscode));
import { vscode } from './vscodeMock';

const { measureInt8 } = await import('../../../src/extension/commands/measureInt8');

const env = parityWorkerUnderTest('replens-int8-command-');
/** An extension folder whose dist/ is the test's bundle, as the packaged extension's is its own. */
let extension: string;
beforeAll(async () => {
  extension = path.join(env.dir, 'extension');
  await mkdir(extension);
  await symlink(env.bundleDir, path.join(extension, 'dist'));
});
afterEach(() => vi.restoreAllMocks());

function settings(values: Record<string, unknown>): void {
  vi.spyOn(vscode.workspace, 'getConfiguration').mockReturnValue({ get: <T>(key: string, fallback: T) => (values[key] as T) ?? fallback } as never);
}

describe('the INT8 tab’s measurement in the extension', () => {
  it('calibrates on the folder replens.int8.calibration names, relative to the model', async () => {
    const models = path.join(env.dir, 'models');
    await mkdir(path.join(models, 'calib'), { recursive: true });
    const input = await fixtureIn(models, 'repvgg_tiny_train.pth');
    const rand = seededRandom(4);
    for (const name of ['x.npy', 'y.npy']) {
      await writeFile(
        path.join(models, 'calib', name),
        npyBytes(
          [1, 3, 32, 32],
          Float32Array.from({ length: 3 * 32 * 32 }, () => 2 * rand() - 1),
        ),
      );
    }
    settings({ calibration: 'calib' });
    const report = await measureInt8(vscode.Uri.file(extension) as never, input);
    expect(report.calibration).toEqual({ source: 'files', method: 'minmax', files: ['x.npy', 'y.npy'].map((n) => path.join(models, 'calib', n)) });
    expect(report).toMatchObject({ inputs: 2, shape: [1, 3, 32, 32] });
    expect(report.blocks).toHaveLength(7);
  }, 60_000);

  it('without a calibration setting: as many random inputs as a parity check uses', async () => {
    const input = await fixtureIn(env.dir, 'repvgg_tiny_train.pth');
    settings({ inputs: 2 });
    const report = await measureInt8(vscode.Uri.file(extension) as never, input);
    expect(report).toMatchObject({ inputs: 2, shape: [1, 3, 224, 224], calibration: { source: 'random', files: [] } });
  }, 60_000);
});
