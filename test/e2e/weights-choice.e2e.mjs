// A YOLO training checkpoint holds two sets of weights ('model' and 'ema'): the model editor says which one
// RepLens reads and why, and picking the other one changes what the report checks.
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { findFrame, findReplensEditor, openFromExplorer, openWorkspace, reportOf, test } from './harness.mjs';

const FILE = 'tiny_repconv_last.pt';
const PEER_FIXTURE = new URL(`../fixtures/peers/yolov7/${FILE}`, import.meta.url).pathname;

test("the model editor reads a YOLO checkpoint's EMA weights, and the Weights choice switches to 'model'", async ({ page, server, resultsDir }) => {
  copyFileSync(PEER_FIXTURE, join(server.workspace, FILE));
  await openWorkspace(page, server);
  await openFromExplorer(page, FILE);
  const editor = await findReplensEditor(page, FILE);
  const weights = editor.locator('[data-testid="weights"]');
  await weights.waitFor({ timeout: 30_000 });
  const choice = editor.locator('[data-testid="weights-choice"]');
  assert.equal(await choice.evaluate((el) => el.value), 'ema');
  assert.match(await weights.innerText(), /the EMA weights, which YOLO projects evaluate and export when a checkpoint has them \(also in the file: 'model'\)/);
  await page.screenshot({ path: join(resultsDir, 'e2e-weights-choice.png') });

  await choice.click();
  await editor.locator('[data-testid="weights-choice"] vscode-option', { hasText: 'model' }).click();
  await editor.locator('[data-testid="weights"]', { hasText: 'picked here' }).waitFor({ timeout: 30_000 });
  assert.equal(await editor.locator('[data-testid="weights-choice"]').evaluate((el) => el.value), 'model');
  await page.screenshot({ path: join(resultsDir, 'e2e-weights-picked.png') });

  await editor.getByRole('button', { name: 'Check Parity' }).click();
  const report = await findFrame(page, reportOf(FILE), 120_000, `report of ${FILE}`);
  await report.locator('[data-testid="verdict"]').waitFor({ timeout: 120_000 });
  const header = await report.locator('.rl-sub').first().innerText();
  assert.match(header, /weights 'model'/, `report header: ${header}`);
  assert.match(await report.locator('[data-testid="verdict"]').innerText(), /PASS/);
  await page.screenshot({ path: join(resultsDir, 'e2e-weights-report.png') });
});
