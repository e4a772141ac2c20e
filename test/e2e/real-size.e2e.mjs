// A full-size RepVGG-A0 converted from VS Code's Explorer, as a user would, and the file it wrote
// loaded in real PyTorch (Debian's python3-torch, which `npm test` installs for the interop tests
// before this runs) and compared with PyTorch's own float64 fusion of the same checkpoint.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertFromExplorer, openWorkspace, test } from './harness.mjs';

const PYTHON = '/usr/bin/python3';
const INTEROP = new URL('../interop/', import.meta.url).pathname;
const TRAIN = 'repvgg_a0_float32.pth';
const DEPLOY = 'repvgg_a0_float32.deploy.pth';

test(
  'a full-size RepVGG-A0 converted from the Explorer loads in PyTorch equal to its own float64 fusion',
  async ({ page, server, resultsDir }) => {
    const scratch = mkdtempSync(join(tmpdir(), 'replens-e2e-a0-'));
    try {
      // Random weights and BN statistics, made by torch in the sample workspace (A0 naming and widths).
      execFileSync(PYTHON, [join(INTEROP, 'make_real_size.py'), server.workspace, 'repvgg_a0:float32'], { stdio: ['ignore', 'ignore', 'inherit'] });
      await openWorkspace(page, server);
      const report = await convertFromExplorer(page, server, TRAIN, DEPLOY, 240_000);
      await report.locator('[data-testid="tab-graphs"]').click();
      await report.locator('[data-testid="graph-after"] .rl-block-node').first().waitFor({ timeout: 30_000 });
      await page.screenshot({ path: join(resultsDir, 'e2e-real-size-a0.png') });

      const manifest = join(scratch, 'check.json');
      writeFileSync(
        manifest,
        JSON.stringify([{ model: 'repvgg_a0', dtype: 'float32', train: join(server.workspace, TRAIN), deploy: join(server.workspace, DEPLOY) }]),
      );
      const [result] = JSON.parse(execFileSync(PYTHON, [join(INTEROP, 'check_real_size.py'), manifest], { encoding: 'utf8', maxBuffer: 1 << 26 }));
      assert.equal(result.error, undefined, result.error);
      assert.deepEqual([result.weightsOnlyLoad, result.strictLoad], [true, true]);
      const fused = result.tensors.filter((t) => t.fused);
      assert.equal(fused.length, 2 * 22, 'RepVGG-A0 has 22 blocks, each one fused weight and bias');
      const off = fused.filter((t) => !(t.maxUlps <= 1 && t.relErr <= 1e-6 && t.notRoundedOnce === 0));
      assert.deepEqual(
        off.map((t) => t.name),
        [],
        `fused tensors off PyTorch's float64 fusion: ${JSON.stringify(off.slice(0, 3))}`,
      );
      const changed = result.tensors.filter((t) => !t.fused && !t.identical);
      assert.deepEqual(
        changed.map((t) => t.name),
        [],
        "passed-through tensors are the train file's bits",
      );
      assert.ok(result.outputs.replensVsRounded < 1e-9, `outputs: ${JSON.stringify(result.outputs)}`);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
      // Out of the shared workspace again, so later tests see the samples they expect.
      for (const f of [TRAIN, DEPLOY]) rmSync(join(server.workspace, f), { force: true });
    }
  },
  { timeoutMs: 420_000 },
);
