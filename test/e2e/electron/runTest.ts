// Runs the extension host suite (suite/*.test.ts) in desktop VS Code through
// @vscode/test-electron. REPLENS_VSCODE_PATH points at a local VS Code executable;
// without it test-electron downloads the pinned version (needs internet).
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runTests } from '@vscode/test-electron';

// This file is bundled to out/e2e/runTest.js, two levels below the repository root.
const repoRoot = resolve(__dirname, '..', '..');

async function main(): Promise<void> {
  const samples = join(repoRoot, 'test', 'fixtures', 'models');
  if (!existsSync(samples)) throw new Error(`sample models missing: ${samples}`);
  const scratch = mkdtempSync(join(tmpdir(), 'replens-electron-'));
  // A copy, so nothing the tests do can touch the fixtures.
  const workspace = join(scratch, 'replens-samples');
  cpSync(samples, workspace, { recursive: true });
  try {
    await runTests({
      vscodeExecutablePath: process.env.REPLENS_VSCODE_PATH || undefined,
      version: '1.100.3',
      extensionDevelopmentPath: repoRoot,
      extensionTestsPath: join(__dirname, 'suite', 'index.js'),
      launchArgs: [
        workspace,
        '--disable-extensions',
        '--disable-workspace-trust',
        '--skip-welcome',
        '--skip-release-notes',
        '--user-data-dir',
        join(scratch, 'user-data'),
      ],
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
