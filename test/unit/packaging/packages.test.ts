import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileByteSource } from '../../../src/core/formats/byteSource';
import { ZipArchive } from '../../../src/core/formats/zip';
import { ORT_PLATFORMS, runtimeUnavailableMessage } from '../../../src/core/parity/runtime';

/**
 * What users install: every VSIX of `npm run package:all` (scripts/package-all.mjs, run for real:
 * one build of dist/, then vsce once per VSIX) and the npm tarball of the CLI, installed on its own
 * into a temporary prefix. Only linux-x64 can run here, so only its VSIX (and the universal one) is
 * run; the others are checked by their file lists.
 *
 * One file, run in order: the packaging may build dist/, which `npm pack` then reads.
 */
const ROOT = path.join(__dirname, '..', '..', '..');
const ORT_BIN = 'node_modules/onnxruntime-node/bin';
const TINY = path.join(ROOT, 'test', 'fixtures', 'models', 'repvgg_tiny_train.pth');
const SMALL = ['--shape', '1,3,32,32', '--inputs', '2', '--latency-runs', '1'];
const HERE = `${process.platform}-${process.arch}`;
const TARGETS = [...ORT_PLATFORMS, 'universal'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never rejects. No NODE_PATH, and none of npm's own variables from `npm run`. */
function run(command: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_/i.test(k) && k !== 'NODE_PATH') env[k] = v;
  return new Promise((resolve) => {
    execFile(command, args, { cwd: options.cwd ?? ROOT, env: { ...env, ...options.env }, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

async function entriesOf(file: string): Promise<{ zip: ZipArchive; names: string[]; close(): Promise<void> }> {
  const src = await FileByteSource.open(file);
  const zip = await ZipArchive.open(src);
  return { zip, names: zip.entries.map((e) => e.name).sort(), close: () => src.close() };
}

/** Writes every entry under extension/ into `into`, as VS Code installs a VSIX. */
async function extract(file: string, into: string): Promise<string> {
  const { zip, close } = await entriesOf(file);
  try {
    for (const entry of zip.entries) {
      if (!entry.name.startsWith('extension/') || entry.name.endsWith('/')) continue;
      const target = path.join(into, entry.name);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, await zip.read(entry));
    }
  } finally {
    await close();
  }
  return path.join(into, 'extension');
}

/** onnxruntime-node's binary folder for a target, e.g. node_modules/onnxruntime-node/bin/napi-v6/linux/x64. */
async function binFolder(target: string): Promise<string> {
  const [os, arch] = target.split('-');
  const napi = (await readdir(path.join(ROOT, ORT_BIN))).filter((n) => n.startsWith('napi-v'));
  expect(napi).toHaveLength(1);
  return `${ORT_BIN}/${napi[0]}/${os}/${arch}`;
}

let dir: string;
let packaging: Run;
let seconds: number;
const lists = new Map<string, string[]>();

const BUNDLES = ['extension', 'cli', 'parityWorker', 'layoutWorker', 'webview'].map((b) => path.join(ROOT, 'dist', `${b}.js`));

/** Newest modification time of the files under `folders`, in ms. */
async function newest(folders: string[]): Promise<number> {
  let latest = 0;
  for (const folder of folders) {
    for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) latest = Math.max(latest, (await stat(path.join(entry.parentPath, entry.name))).mtimeMs);
    }
  }
  return latest;
}

/**
 * dist/ is rebuilt only when a source is newer than a bundle: the checkout is shared (npm run package
 * and the end-to-end runner write dist/ too), so the test writes it only when it must.
 */
async function distIsCurrent(): Promise<boolean> {
  if (!BUNDLES.every((b) => existsSync(b))) return false;
  const built = Math.min(...(await Promise.all(BUNDLES.map(async (b) => (await stat(b)).mtimeMs))));
  const sources = Math.max(await newest([path.join(ROOT, 'src'), path.join(ROOT, 'webview')]), (await stat(path.join(ROOT, 'package.json'))).mtimeMs);
  return sources < built;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-packages-'));
  const started = performance.now();
  const build = (await distIsCurrent()) ? ['--no-build'] : [];
  packaging = await run(process.execPath, ['scripts/package-all.mjs', '--out-dir', path.join(dir, 'vsix'), ...build]);
  seconds = (performance.now() - started) / 1000;
  if (packaging.code !== 0) throw new Error(`npm run package:all failed:\n${packaging.stdout}\n${packaging.stderr}`);
  for (const target of TARGETS) {
    const { names, close } = await entriesOf(path.join(dir, 'vsix', `replens-${target}.vsix`));
    lists.set(target, names);
    await close();
  }
}, 400_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('npm run package:all', () => {
  it('writes one VSIX per onnxruntime-node platform and a universal one', async () => {
    expect((await readdir(path.join(dir, 'vsix'))).sort()).toEqual(TARGETS.map((t) => `replens-${t}.vsix`).sort());
    expect(packaging.stdout).toContain(`${TARGETS.length} VSIX files in`);
    console.log(`package:all took ${seconds.toFixed(1)} s`);
  });

  it.each(TARGETS)('%s: the bundles and package.json, and only its own platform’s ONNX Runtime', async (target) => {
    const names = lists.get(target)!;
    for (const f of ['package.json', 'dist/extension.js', 'dist/cli.js', 'dist/parityWorker.js', 'dist/layoutWorker.js', 'dist/webview.js']) {
      expect(names).toContain(`extension/${f}`);
    }
    const bins = names.filter((n) => n.startsWith(`extension/${ORT_BIN}/`));
    if (target === 'universal') {
      expect(names.filter((n) => /\.(node|so(\.\d+)*|dylib|dll)$/.test(n))).toEqual([]);
      expect(names.filter((n) => n.includes('/onnxruntime-'))).toEqual([]);
      return;
    }
    const own = await binFolder(target);
    // Every file onnxruntime-node ships for the platform, and nothing of any other platform.
    const shipped = (await readdir(path.join(ROOT, own))).map((f) => `extension/${own}/${f}`).sort();
    expect(shipped).toContain(`extension/${own}/onnxruntime_binding.node`);
    expect(bins).toEqual(shipped);
    expect(names).toContain('extension/node_modules/onnxruntime-node/dist/index.js');
    expect(names).toContain('extension/node_modules/onnxruntime-common/dist/cjs/index.js');
  });

  it('the VSIX files differ only in ONNX Runtime, and hold no sources, tests or source maps', () => {
    const rest = (target: string) => lists.get(target)!.filter((n) => !n.startsWith('extension/node_modules/'));
    for (const target of TARGETS) expect(rest(target)).toEqual(rest('universal'));
    const withoutBins = (target: string) => lists.get(target)!.filter((n) => !n.startsWith(`extension/${ORT_BIN}/`));
    for (const target of ORT_PLATFORMS) expect(withoutBins(target)).toEqual(withoutBins('linux-x64'));
    expect(rest('universal').filter((n) => /^extension\/(src|test|webview|scripts|out)\/|\.map$|\.ts$/.test(n))).toEqual([]);
  });

  it.each(TARGETS)('%s: its manifest names its target (none for the universal one)', async (target) => {
    const { zip, close } = await entriesOf(path.join(dir, 'vsix', `replens-${target}.vsix`));
    try {
      const manifest = new TextDecoder().decode(await zip.read(zip.entry('extension.vsixmanifest')!));
      if (target === 'universal') expect(manifest).not.toContain('TargetPlatform=');
      else expect(manifest).toContain(`TargetPlatform="${target}"`);
    } finally {
      await close();
    }
  });

  it.runIf(HERE === 'linux-x64')(
    'linux-x64, installed: the CLI in it checks parity with its own ONNX Runtime',
    async () => {
      const extension = await extract(path.join(dir, 'vsix', 'replens-linux-x64.vsix'), path.join(dir, 'linux-x64'));
      const r = await run(process.execPath, [path.join(extension, 'dist', 'cli.js'), 'parity', TINY, ...SMALL]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^PASS {2}repvgg_tiny_train\.pth/);
    },
    60_000,
  );

  it('universal, installed: parity says what is missing; inspecting works', async () => {
    const extension = await extract(path.join(dir, 'vsix', 'replens-universal.vsix'), path.join(dir, 'universal'));
    expect(existsSync(path.join(extension, 'node_modules'))).toBe(false);
    const cli = path.join(extension, 'dist', 'cli.js');
    const parity = await run(process.execPath, [cli, 'parity', TINY, ...SMALL]);
    expect(parity.code).toBe(1);
    expect(parity.stderr).toContain(runtimeUnavailableMessage());
    expect(parity.stderr).not.toMatch(/\n\s+at /);
    const inspect = await run(process.execPath, [cli, 'inspect', TINY]);
    expect(inspect.code).toBe(0);
  }, 60_000);
});

describe('the CLI on its own: npm pack, then npm i -g', () => {
  let tarball: string;
  let packed: string[];

  beforeAll(async () => {
    // dist/ is current (package:all built it if it was not); --ignore-scripts skips the prepack build.
    const r = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir]);
    if (r.code !== 0) throw new Error(`npm pack failed:\n${r.stderr}`);
    const [info] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
    tarball = path.join(dir, info.filename);
    packed = info.files.map((f) => f.path).sort();
  }, 60_000);

  it('packs the bundles, package.json, README, LICENSE and CHANGELOG: no sources, tests, fixtures or media', () => {
    expect(path.basename(tarball)).toBe('replens-0.1.0.tgz');
    expect(packed).toEqual([
      'CHANGELOG.md',
      'LICENSE',
      'README.md',
      'dist/cli.js',
      'dist/extension.js',
      'dist/layoutWorker.js',
      'dist/parityWorker.js',
      'dist/webview.js',
      'package.json',
    ]);
  });

  /**
   * Installs the tarball as README.md says: onnxruntime-node (a dependency, with its binaries for
   * every platform) comes from the npm cache or the registry. ONNXRUNTIME_NODE_INSTALL=skip stops
   * its postinstall from downloading the CUDA provider from api.nuget.org, which fails offline and
   * fails the install; RepLens runs ONNX Runtime on the CPU only.
   */
  it('installs into a fresh prefix; replens --help and replens parity run', async () => {
    const prefix = path.join(dir, 'prefix');
    const install = await run('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], {
      cwd: dir,
      env: { ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
    expect(install.code, install.stderr).toBe(0);
    const replens = path.join(prefix, 'bin', 'replens');
    const help = await run(replens, ['--help'], { cwd: dir });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^RepLens 0\.1\.0/);
    expect(help.stdout).toContain('Usage: replens <command> [options]');
    const parity = await run(replens, ['parity', TINY, ...SMALL], { cwd: dir });
    expect(parity.stderr).toBe('');
    expect(parity.stdout).toMatch(/^PASS {2}repvgg_tiny_train\.pth/);
  }, 180_000);
});
