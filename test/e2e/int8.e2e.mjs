// The report's INT8 tab: measured on request by the extension host, worst block first with its cause,
// and a block clicked there is shown in the graphs like anywhere else in the report.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { findFrame, fromExplorerMenu, openFromExplorer, openWorkspace, reportOf, runCommand, test } from './harness.mjs';

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
