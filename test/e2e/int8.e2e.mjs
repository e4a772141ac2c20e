// The report's INT8 tab: measured on request by the extension host, worst block first with its cause,
// and a block clicked there is shown in the graphs like anywhere else in the report.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { findFrame, fromExplorerMenu, openFromExplorer, openWorkspace, reportOf, runCommand, test } from './harness.mjs';

const repoRoot = new URL('../../', import.meta.url).pathname;

test('the INT8 tab measures the deploy form on request, worst block first with its cause, and a block clicked there is shown in the graphs', async ({
  page,
  server,
  resultsDir,
}) => {
  await openWorkspace(page, server);
  await openFromExplorer(page, 'repvgg_tiny_train.pth');
  await fromExplorerMenu(page, 'repvgg_tiny_train.pth', 'Check Parity');
  const report = await findFrame(page, reportOf('repvgg_tiny_train.pth'), 120_000, 'the report of repvgg_tiny_train.pth');
  await report.locator('[data-testid="verdict"]').waitFor({ timeout: 60_000 });
  // The report opens beside the editor without taking focus: focus its group, then give it the window.
  await page.locator('.tab', { hasText: 'Report: repvgg_tiny_train.pth' }).click();
  await runCommand(page, 'View: Toggle Maximize Editor Group');

  await report.locator('[data-testid="tab-int8"]').click();
  await report.locator('[data-testid="int8-measure"]').click();
  const table = report.locator('[data-testid="int8-table"]');
  await table.waitFor({ timeout: 120_000 });

  const rows = table.locator('tbody tr[data-block]');
  assert.equal(await rows.count(), 7, 'one row per block');
  const errors = (await rows.locator('td:nth-child(3)').allInnerTexts()).map((t) => Number.parseFloat(t));
  // Each flagged block is followed by its cause and advice.
  const notes = await table.locator('tr.rl-flag-note').allInnerTexts();
  assert.ok(
    notes.every((n) => /^⚠ (per-tensor weights|activation range|weights): /.test(n)),
    `notes: ${notes}`,
  );
  assert.ok(
    errors.every((e) => e > 0 && e < 100),
    `INT8 errors in percent: ${errors}`,
  );
  assert.deepEqual(
    errors,
    [...errors].sort((a, b) => b - a),
    'worst block first',
  );
  const outputs = await report.locator('[data-testid="int8-outputs"] li').allInnerTexts();
  assert.equal(outputs.length, 2);
  assert.match(outputs[0], /^output, weights per-tensor: error \d+\.\d\d %, cosine 0\.\d{5}, top-1 agreement \d+\.\d\d %$/);
  assert.match(outputs[1], /^output, weights per-channel: /);
  assert.match(
    await report.locator('[data-testid="int8-summary"]').innerText(),
    /^Measured on 4 random input\(s\) of \[1, 3, 224, 224\], activation ranges by minmax\.$/,
  );
  await page.screenshot({ path: join(resultsDir, 'e2e-int8-tab.png') });

  const worst = await rows.first().getAttribute('data-block');
  await rows.first().click();
  await report.locator('[data-testid="graph-after"] .rl-selected').first().waitFor({ timeout: 20_000 });
  assert.equal((await report.locator('[data-testid="detail-card"] h3').innerText()).trim().split(/\s/)[0], worst);
});

test(
  'on a full-size RepVGG-A0 whose BN scales let a few channels dominate, the INT8 tab and the CLI agree, and per-channel weights win',
  async ({ page, server, resultsDir }) => {
    const file = 'repvgg_a0_float32_outliers.pth';
    const path = join(server.workspace, file);
    try {
      // Made by torch in the sample workspace: A0's naming and widths, random weights, two dominant channels per block.
      execFileSync('/usr/bin/python3', [new URL('../interop/make_real_size.py', import.meta.url).pathname, server.workspace, 'repvgg_a0:float32:outliers'], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      await openWorkspace(page, server);
      await openFromExplorer(page, file);
      await fromExplorerMenu(page, file, 'Check Parity');
      const report = await findFrame(page, reportOf(file), 240_000, `the report of ${file}`);
      await report.locator('[data-testid="verdict"]').waitFor({ timeout: 240_000 });
      await report.locator('[data-testid="tab-int8"]').click();
      await report.locator('[data-testid="int8-measure"]').click();
      const table = report.locator('[data-testid="int8-table"]');
      await table.waitFor({ timeout: 240_000 });
      const rows = table.locator('tbody tr[data-block]');
      const tab = await rows.evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-block'), tr.querySelector('td:nth-child(3)').textContent.trim()]));
      await page.screenshot({ path: join(resultsDir, 'e2e-int8-a0.png') });

      // The CLI on the same file, with the same number of inputs as the extension's parity setting (4).
      const cli = JSON.parse(
        execFileSync(process.execPath, [join(repoRoot, 'dist', 'cli.js'), 'quantize-check', path, '--inputs', '4', '--json'], {
          encoding: 'utf8',
          maxBuffer: 1 << 26,
        }),
      );
      assert.equal(tab.length, 22, 'RepVGG-A0 has 22 blocks');
      assert.deepEqual(
        tab,
        cli.blocks.map((b) => [b.name, `${(100 * b.int8Error).toFixed(2)} %`]),
        'the tab shows what the CLI measures, block for block, in the same order',
      );
      const [perTensor, perChannel] = ['per-tensor', 'per-channel'].map((w) => cli.outputs.find((o) => o.weights === w));
      assert.ok(perChannel.relError < perTensor.relError / 1.5, `per-channel ${perChannel.relError} vs per-tensor ${perTensor.relError}`);
      const flagged = cli.blocks.filter((b) => b.cause === 'per-tensor weights');
      assert.ok(flagged.length > 0, 'some blocks are fixed by per-channel weights');
      for (const b of flagged) assert.ok(b.perChannel.int8Error < b.int8Error, `${b.name}: per channel ${b.perChannel.int8Error} vs per tensor ${b.int8Error}`);
    } finally {
      // Out of the shared workspace again, so later tests see the samples they expect.
      rmSync(path, { force: true });
    }
  },
  { timeoutMs: 600_000 },
);
