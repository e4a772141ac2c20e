// Packages RepLens for every platform: one VSIX per platform that onnxruntime-node ships a native
// binary for, each carrying only that platform's binary, and a universal VSIX with no ONNX Runtime
// (VS Code installs it where no platform VSIX fits, e.g. darwin-x64; its parity check says what is
// missing, see src/core/parity/runtime.ts). Builds dist/ once, then runs vsce once per VSIX.
//
//   node scripts/package-all.mjs [--out-dir DIR] [--no-build] [--only TARGET,…]
//     --out-dir DIR  where the VSIX files go (default: the repository root, beside replens-linux-x64.vsix)
//     --no-build     package dist/ as it is
//     --only T,…     only these VSIX files (named as in the file names: linux-x64, universal, …)
//
// Each VSIX holds what .vscodeignore lets through, with its onnxruntime-node/bin/ line replaced by
// the target's own folder (the universal one drops onnxruntime-node and onnxruntime-common). A VSIX
// is written under a temporary name and renamed into place, so a reader never sees half of one.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ORT_BIN = 'node_modules/onnxruntime-node/bin';
/** Targets vsce accepts (vsce package --help). */
const VSCE_TARGETS = ['win32-x64', 'win32-arm64', 'linux-x64', 'linux-arm64', 'linux-armhf', 'darwin-x64', 'darwin-arm64', 'alpine-x64', 'alpine-arm64'];
const VSCE_FLAGS = ['--allow-missing-repository', '--no-rewrite-relative-links'];

/** The onnxruntime-node binary folders, e.g. {target: 'linux-x64', folder: 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64'}. */
function platformFolders() {
  const dir = join(ROOT, ORT_BIN);
  if (!existsSync(dir)) throw new Error(`${ORT_BIN} is missing: run npm ci first`);
  const folders = [];
  for (const napi of readdirSync(dir).filter((n) => /^napi-v\d+$/.test(n))) {
    for (const os of readdirSync(join(dir, napi))) {
      for (const arch of readdirSync(join(dir, napi, os))) {
        if (statSync(join(dir, napi, os, arch)).isDirectory()) folders.push({ target: `${os}-${arch}`, folder: `${ORT_BIN}/${napi}/${os}/${arch}` });
      }
    }
  }
  const unknown = folders.filter((f) => !VSCE_TARGETS.includes(f.target));
  if (unknown.length) throw new Error(`onnxruntime-node ships for ${unknown.map((f) => f.target).join(', ')}, which vsce has no target for`);
  return folders;
}

/** .vscodeignore for one VSIX: the shared list with the onnxruntime lines set for `folder` (null: universal, no ONNX Runtime). */
function ignoreFor(base, folder) {
  const kept = base.split(/\r?\n/).filter((line) => {
    const l = line.trim();
    if (l.startsWith(`!${ORT_BIN}/`)) return false;
    return folder !== null || !/^!node_modules\/onnxruntime-(node|common)\//.test(l);
  });
  if (folder !== null) kept.push(`!${folder}/**`);
  return kept.join('\n') + '\n';
}

/** Runs a command in the repository; resolves with its stdout, or rejects with all its output. */
function run(command, args, label) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let output = '';
    child.stdout.on('data', (d) => ((stdout += d), (output += d)));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolveRun(stdout) : reject(new Error(`${label} failed (exit ${code}):\n${output.trim()}`))));
  });
}

/** Runs `jobs` (functions returning promises) with at most `limit` at a time. */
async function pool(jobs, limit) {
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

/** The value after `flag`, or undefined when `flag` is absent. */
function option(args, flag) {
  const i = args.indexOf(flag);
  if (i < 0) return undefined;
  if (!args[i + 1] || args[i + 1].startsWith('--')) throw new Error(`${flag} needs a value`);
  return args[i + 1];
}

async function main() {
  const args = process.argv.slice(2);
  const outDir = resolve(option(args, '--out-dir') ?? ROOT);
  const only = option(args, '--only')?.split(',');
  const started = performance.now();

  const all = [...platformFolders(), { target: 'universal', folder: null }];
  const unknown = only?.filter((t) => !all.some((p) => p.target === t)) ?? [];
  if (unknown.length) throw new Error(`no VSIX is made for ${unknown.join(', ')}; the targets are ${all.map((p) => p.target).join(', ')}`);
  const packages = only ? all.filter((p) => only.includes(p.target)) : all;

  if (!args.includes('--no-build')) {
    process.stdout.write('building dist/ … ');
    await run(process.execPath, ['scripts/build.mjs'], 'scripts/build.mjs');
    process.stdout.write('done\n');
  }
  for (const f of ['dist/extension.js', 'dist/cli.js', 'dist/parityWorker.js']) {
    if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run npm run build`);
  }

  const base = await readFile(join(ROOT, '.vscodeignore'), 'utf8');
  const vsce = join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce');
  const work = await mkdtemp(join(tmpdir(), 'replens-package-'));
  try {
    await mkdir(outDir, { recursive: true });
    const jobs = packages.map(({ target, folder }) => async () => {
      const ignoreFile = join(work, `${target}.vscodeignore`);
      await writeFile(ignoreFile, ignoreFor(base, folder));
      const out = join(outDir, `replens-${target}.vsix`);
      const partial = `${out}.${process.pid}.partial.vsix`;
      const t = performance.now();
      try {
        await run(
          process.execPath,
          [vsce, 'package', ...VSCE_FLAGS, ...(folder ? ['--target', target] : []), '--ignoreFile', ignoreFile, '--out', partial],
          `vsce package (${target})`,
        );
        await rename(partial, out);
      } finally {
        await rm(partial, { force: true });
      }
      const { size } = await stat(out);
      console.log(`${out}  ${(size / 1e6).toFixed(1)} MB  ${((performance.now() - t) / 1000).toFixed(1)} s`);
      return out;
    });
    // A vsce run is one thread (collecting the repository's files, then deflating them): one per core.
    await pool(jobs, Math.max(1, availableParallelism()));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  console.log(`${packages.length} VSIX files in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
