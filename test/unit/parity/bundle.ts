import { execFile } from 'node:child_process';
import * as esbuild from 'esbuild';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';

const ROOT = path.join(__dirname, '..', '..', '..');

export const ENTRIES = {
  parityWorker: path.join(ROOT, 'src', 'core', 'parity', 'worker.ts'),
  cli: path.join(ROOT, 'src', 'cli', 'main.ts'),
};

export interface Bundle {
  dir: string;
  dispose(): Promise<void>;
}

/**
 * Bundles entries as scripts/build.mjs does. The folder is under node_modules/.cache so that
 * the bundles' require('onnxruntime-node') resolves exactly as it does from dist/.
 */
export async function bundle(entries: Partial<typeof ENTRIES>): Promise<Bundle> {
  const cache = path.join(ROOT, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  const dir = await mkdtemp(path.join(cache, 'replens-test-'));
  await esbuild.build({
    entryPoints: entries as Record<string, string>,
    bundle: true,
    outdir: dir,
    platform: 'node',
    format: 'cjs',
    target: 'es2022',
    external: ['onnxruntime-node'],
    logLevel: 'silent',
  });
  return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
}

/** The parity worker bundled, and the path its callers pass as `workerPath`. */
export async function bundleParityWorker(): Promise<Bundle & { workerPath: string }> {
  const built = await bundle({ parityWorker: ENTRIES.parityWorker });
  return { ...built, workerPath: path.join(built.dir, 'parityWorker.js') };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the bundled CLI (`built` has cli.js) with `args`, as a user's shell would; never rejects. */
export function runCli(built: Bundle, args: readonly string[], cwd?: string): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(built.dir, 'cli.js'), ...args], { cwd, maxBuffer: 1 << 24 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

/**
 * For the tests of a file or describe block that run the CLI: bundles it, with a temporary folder
 * for their files, before they run, and removes both after.
 */
export function cliUnderTest(prefix: string): { run: (args: readonly string[], cwd?: string) => Promise<CliRun>; readonly dir: string } {
  let built: Bundle | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    [built, dir] = await Promise.all([bundle(ENTRIES), mkdtemp(path.join(tmpdir(), prefix))]);
  }, 60_000);
  afterAll(async () => {
    await built?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return {
    run: (args, cwd) => runCli(built!, args, cwd),
    get dir() {
      return dir!;
    },
  };
}

/**
 * For the tests of a file that run parity: bundles the worker, with a temporary folder for their
 * files, before they run (ahead of the file's own beforeAll), and removes both after.
 */
export function parityWorkerUnderTest(prefix: string): { readonly workerPath: string; readonly bundleDir: string; readonly dir: string } {
  let built: (Bundle & { workerPath: string }) | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    [built, dir] = await Promise.all([bundleParityWorker(), mkdtemp(path.join(tmpdir(), prefix))]);
  }, 60_000);
  afterAll(async () => {
    await built?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return {
    get workerPath() {
      return built!.workerPath;
    },
    get bundleDir() {
      return built!.dir;
    },
    get dir() {
      return dir!;
    },
  };
}
