// What the report and the toasts say: a float16 conversion is judged by what float16
// can hold, a check that could not run is an error with its reason, reports share one column, and a bad file's toast gives its reason first.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { convertFromExplorer, findFrame, fromExplorerMenu, openFromExplorer, openWorkspace, reportOf, test } from './harness.mjs';

test('a float16 checkpoint converts to a float16 file that passes, and the report says which tolerance applied and why', async ({
  page,
  server,
  resultsDir,
}) => {
  await openWorkspace(page, server);
  const report = await convertFromExplorer(page, server, 'yolov7_repconv_train.pt', 'yolov7_repconv_train.deploy.pt');
  const basis = report.locator('[data-testid="tolerance-basis"]');
  assert.match(await basis.innerText(), /^Tolerance: the deploy weights are float16, which holds 11 significant bits: .* may differ by 4× that/);
  // The toast comes after the check, with its verdict.
  await page
    .locator('.notifications-toasts', { hasText: 'wrote yolov7_repconv_train.deploy.pt' })
    .filter({ hasText: 'parity PASS' })
    .waitFor({ timeout: 60_000 });
  await page.screenshot({ path: join(resultsDir, 'e2e-float16-verdict.png') });
});

test('a check that cannot run is a red error with its reason first, and the costs are still shown', async ({ page, server, resultsDir }) => {
  await openWorkspace(page, server);
  // A file already in deploy form has nothing to check against.
  await openFromExplorer(page, 'repvgg_tiny_deploy.pth');
  await fromExplorerMenu(page, 'repvgg_tiny_deploy.pth', 'Check Parity');
  const report = await findFrame(page, reportOf('repvgg_tiny_deploy.pth'), 120_000, 'the report of a check that could not run');
  const verdict = report.locator('[data-testid="verdict"]');
  await verdict.waitFor({ timeout: 60_000 });
  assert.equal((await verdict.innerText()).trim(), 'Parity ERROR');
  assert.match(await verdict.getAttribute('class'), /rl-badge-fail/);
  assert.match(await report.locator('[data-testid="parity-error"]').innerText(), /^Parity could not run: .*every block is already in deploy form/);
  // No "0 inputs": nothing was run. MACs come from the graphs, not from parity.
  assert.doesNotMatch(await report.locator('.rl-report-head').innerText(), /0 inputs/);
  assert.doesNotMatch(await report.locator('body').innerText(), /MACs\s*0 → 0/);
  await page.locator('.notifications-toasts', { hasText: 'could not run' }).waitFor({ timeout: 30_000 });
  await page.screenshot({ path: join(resultsDir, 'e2e-check-error.png') });
});

test('reports of several conversions share one column beside the models, one tab per model', async ({ page, server, resultsDir }) => {
  await openWorkspace(page, server);
  const groups = () => page.locator('.editor-group-container').count();
  /** The index of the editor group whose tabs include `title`, for each title. */
  const groupsOf = (titles) =>
    page
      .locator('.editor-group-container')
      .evaluateAll((els, names) => names.map((n) => els.findIndex((g) => [...g.querySelectorAll('.tab')].some((t) => t.textContent?.includes(n)))), titles);
  // The workbench restores what earlier tests left open; conversions must not add columns to it.
  const before = await groups();
  // Files no other test converts: the workspace is shared, and an existing output would ask before replacing it.
  const files = ['repvgg_grouped_train.pth', 'mobileone_train.pth', 'repvgg_se_train.pth'];
  for (const file of files) await convertFromExplorer(page, server, file, file.replace(/\.pth$/, '.deploy.pth'));
  assert.ok((await groups()) <= Math.max(before, 2), `editor groups: ${before} before three conversions, ${await groups()} after`);
  const reportGroups = await groupsOf(files.map((f) => `Report: ${f}`));
  assert.equal(new Set(reportGroups).size, 1, `the reports' groups: ${reportGroups}`);
  assert.ok(reportGroups[0] >= 0, 'the reports have tabs');
  // The models opened from the Explorer meanwhile stay out of the reports' group.
  const others = await page
    .locator('.editor-group-container')
    .nth(reportGroups[0])
    .locator('.tab')
    .evaluateAll((tabs) => tabs.map((t) => t.textContent?.trim() ?? '').filter((t) => !t.startsWith('Report: ')));
  assert.deepEqual(others, [], 'tabs among the reports that are not reports');
  // A new check of a model reuses its tab.
  await fromExplorerMenu(page, files[0], 'Check Parity');
  await page
    .locator('.notifications-toasts', { hasText: `checking parity of ${files[0]}` })
    .waitFor({ state: 'detached', timeout: 120_000 })
    .catch(() => undefined);
  assert.equal(await page.locator('.tab', { hasText: `Report: ${files[0]}` }).count(), 1);
  assert.ok((await groups()) <= Math.max(before, 2));
  await page.screenshot({ path: join(resultsDir, 'e2e-report-column.png') });
});

test('converting a truncated checkpoint says so first, by the file name, in the toast', async ({ page, server, resultsDir }) => {
  await openWorkspace(page, server);
  await fromExplorerMenu(page, 'truncated_train.pth', 'Convert to Deploy');
  const toast = page.locator('.notifications-toasts', { hasText: 'could not convert truncated_train.pth' });
  await toast.waitFor({ timeout: 30_000 });
  assert.match(
    (await toast.innerText()).replace(/\s+/g, ' '),
    /RepLens: could not convert truncated_train\.pth: the file is truncated: it ends at [\d.]+ KiB, inside a zip that began as a PyTorch checkpoint/,
  );
  // For the screenshot: the progress toast gone and the error toast done fading in.
  await page
    .locator('.notifications-toasts', { hasText: 'converting truncated_train.pth' })
    .waitFor({ state: 'detached', timeout: 10_000 })
    .catch(() => undefined);
  // Expanded, as a user would to read it all.
  await toast.hover();
  await toast
    .locator('.codicon-notifications-expand')
    .first()
    .click({ timeout: 5_000 })
    .catch(() => undefined);
  await page.waitForTimeout(1000);
  await page.screenshot({ path: join(resultsDir, 'e2e-truncated-toast.png') });
});
