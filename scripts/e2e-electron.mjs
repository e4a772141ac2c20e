// Compiles the extension host test suite (test/e2e/electron) to out/e2e and, when
// run directly, runs it in desktop VS Code through @vscode/test-electron:
//   REPLENS_VSCODE_PATH=/path/to/code node scripts/e2e-electron.mjs
// scripts/e2e.mjs reuses the same bundle to run the suite inside code-server.
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { repoRoot } from './vscode-server.mjs';

export const suiteOutDir = join(repoRoot, 'out', 'e2e');
export const suiteEntry = join(suiteOutDir, 'suite', 'index.js');

export async function bundleExtensionSuite() {
  const src = join(repoRoot, 'test', 'e2e', 'electron');
  const tests = readdirSync(join(src, 'suite'))
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => join(src, 'suite', f));
  rmSync(suiteOutDir, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: [join(src, 'runTest.ts'), join(src, 'suite', 'index.ts'), ...tests],
    outbase: src,
    outdir: suiteOutDir,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: 'inline',
    // Supplied by the extension host (vscode) or loaded from node_modules at run time;
    // mocha must stay a single instance shared by index.js and the test files.
    external: ['vscode', 'mocha', '@vscode/test-electron'],
    logLevel: 'warning',
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await bundleExtensionSuite();
  const { status } = spawnSync(process.execPath, [join(suiteOutDir, 'runTest.js')], { stdio: 'inherit' });
  process.exit(status ?? 1);
}
