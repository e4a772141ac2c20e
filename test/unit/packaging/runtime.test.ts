import * as esbuild from 'esbuild';
import { cp, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInChild } from '../../../src/core/parity/child';
import { ParityError } from '../../../src/core/parity/errors';
import type { InferRequest } from '../../../src/core/parity/workerMessages';
import { ORT_PLATFORMS, runtimeUnavailableMessage } from '../../../src/core/parity/runtime';

/**
 * A RepLens package without ONNX Runtime for the platform it runs on (the universal VSIX, or a
 * platform VSIX installed on the wrong machine): the parity check says what is missing instead
 * of the worker dying with a stack trace.
 */
const ROOT = path.join(__dirname, '..', '..', '..');
const ORT = path.join(ROOT, 'node_modules', 'onnxruntime-node');
const HERE = `${process.platform}-${process.arch}`;
const request: InferRequest = {
  type: 'infer',
  model: { label: 'm', source: { path: 'm.onnx' } },
  feeds: [{ name: 'x', dims: [2], data: Float32Array.from([1, 2]) }],
  optimization: 'all',
};

let dir: string;

/** The real worker bundled as scripts/build.mjs bundles it, into `<folder>/dist/parityWorker.js`. */
async function bundleWorker(folder: string): Promise<string> {
  await esbuild.build({
    entryPoints: { parityWorker: path.join(ROOT, 'src', 'core', 'parity', 'worker.ts') },
    bundle: true,
    outdir: path.join(folder, 'dist'),
    platform: 'node',
    format: 'cjs',
    target: 'es2022',
    external: ['onnxruntime-node'],
    logLevel: 'silent',
  });
  return path.join(folder, 'dist', 'parityWorker.js');
}

async function failure(p: Promise<unknown>): Promise<ParityError> {
  const e = await p.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(e).toBeInstanceOf(ParityError);
  return e as ParityError;
}

/** runInChild with no NODE_PATH, so onnxruntime-node is found only beside the worker, as in an installed VSIX. */
async function inferWith(workerPath: string): Promise<ParityError> {
  const saved = process.env.NODE_PATH;
  delete process.env.NODE_PATH;
  try {
    return await failure(runInChild(request, { subject: 'model.pth', workerPath, timeoutSeconds: 30 }));
  } finally {
    if (saved !== undefined) process.env.NODE_PATH = saved;
  }
}

beforeAll(async () => {
  // Under the system temp folder, not the repository: no node_modules above it to find onnxruntime-node in.
  dir = await mkdtemp(path.join(tmpdir(), 'replens-runtime-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the platforms RepLens packages ONNX Runtime for', () => {
  it('are the ones onnxruntime-node ships a binary for (scripts/package-all.mjs makes one VSIX each)', async () => {
    const shipped: string[] = [];
    for (const napi of await readdir(path.join(ORT, 'bin'))) {
      for (const os of await readdir(path.join(ORT, 'bin', napi))) {
        for (const arch of await readdir(path.join(ORT, 'bin', napi, os))) shipped.push(`${os}-${arch}`);
      }
    }
    expect(shipped.sort()).toEqual([...ORT_PLATFORMS].sort());
  });
});

describe('runtimeUnavailableMessage', () => {
  it('names the platform, the VSIX to install, and what works without it', () => {
    expect(runtimeUnavailableMessage('win32', 'arm64')).toBe(
      'this RepLens package has no ONNX Runtime for win32-arm64; install the VSIX for your platform, replens-win32-arm64.vsix (see "Install the extension" in the README); converting and inspecting models work without it; the parity check needs it',
    );
  });

  it('says when no package can have it (darwin-x64: onnxruntime-node ships no binary)', () => {
    const m = runtimeUnavailableMessage('darwin', 'x64');
    expect(m).toMatch(/^ONNX Runtime for Node\.js \(onnxruntime-node\) has no build for darwin-x64, so no RepLens package carries one for it/);
    expect(m).toContain('the parity check needs it');
    expect(m).not.toContain('.vsix');
  });

  it('passes on why a binary that is there did not load', () => {
    expect(runtimeUnavailableMessage('linux', 'x64', 'libonnxruntime.so.1: cannot open shared object file')).toBe(
      'ONNX Runtime for linux-x64 is in this RepLens package but could not be loaded: libonnxruntime.so.1: cannot open shared object file; converting and inspecting models work without it; the parity check needs it',
    );
  });
});

describe('the parity worker without ONNX Runtime', () => {
  it('answers with what is missing when onnxruntime-node is not installed (the universal VSIX)', async () => {
    const worker = await bundleWorker(path.join(dir, 'universal'));
    const e = await inferWith(worker);
    expect(e.code).toBe('runtime');
    expect(e.message).toBe(`model.pth: ${runtimeUnavailableMessage()}`);
    expect(e.message).not.toMatch(/\n\s+at /);
  }, 30_000);

  it('answers the same when onnxruntime-node is there without a binary for this platform', async () => {
    const folder = path.join(dir, 'wrong-platform');
    const modules = path.join(folder, 'node_modules');
    await mkdir(path.join(modules, 'onnxruntime-node'), { recursive: true });
    // onnxruntime-node's JavaScript and onnxruntime-common, as a VSIX for another platform carries them, but no bin/.
    await cp(path.join(ORT, 'package.json'), path.join(modules, 'onnxruntime-node', 'package.json'));
    await cp(path.join(ORT, 'dist'), path.join(modules, 'onnxruntime-node', 'dist'), { recursive: true });
    await cp(path.join(ROOT, 'node_modules', 'onnxruntime-common'), path.join(modules, 'onnxruntime-common'), { recursive: true });
    const worker = await bundleWorker(folder);
    const e = await inferWith(worker);
    expect(e.code).toBe('runtime');
    expect(e.message).toContain(`has no ONNX Runtime for ${HERE}`);
    expect(e.message).toBe(`model.pth: ${runtimeUnavailableMessage()}`);
  }, 30_000);
});
