import { execFile } from 'node:child_process';
import * as esbuild from 'esbuild';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import * as path from 'node:path';

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
