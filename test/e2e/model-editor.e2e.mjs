// The RepLens model editor as a user meets it: click a file in the Explorer of a
// real VS Code (code-server) and read what the webview shows.
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { activeTextEditorText, findReplensEditor, openFromExplorer, openWorkspace, test } from './harness.mjs';

test('a PyTorch zip checkpoint opens in the RepLens editor', async ({ page, server, resultsDir }) => {
  await openWorkspace(page, server);
  await openFromExplorer(page, 'repvgg_tiny_train.pth');
  const editor = await findReplensEditor(page, 'repvgg_tiny_train.pth');
  await editor.locator('[data-testid="format"]').filter({ hasText: 'PyTorch checkpoint (zip)' }).waitFor({ timeout: 20_000 });
  // The size is shown in bytes, with or without thousands separators.
  const bytes = statSync(join(server.workspace, 'repvgg_tiny_train.pth')).size;
  const shown = (await editor.locator('[data-testid="replens-editor"]').innerText()).replace(/[,\u202f\u00a0 ](?=\d{3})/g, '');
  assert.ok(shown.includes(String(bytes)), `the editor does not show the size (${bytes} bytes)`);
  await page.screenshot({ path: join(resultsDir, 'e2e-open-pth.png') });
});

test('a text .pth file is recognised and can be reopened as text', async ({ page, server, resultsDir }) => {
  await openWorkspace(page, server);
  await openFromExplorer(page, 'python_path.pth');
  const editor = await findReplensEditor(page, 'python_path.pth');
  await editor.locator('[data-testid="format"]').filter({ hasText: /text/i }).waitFor({ timeout: 20_000 });
  const reopen = editor.getByRole('button', { name: 'Reopen as Text' }).or(editor.getByRole('link', { name: 'Reopen as Text' }));
  await reopen.first().click({ timeout: 10_000 });

  // Reopening must land in VS Code's text editor with the file's own lines.
  const firstLine = readFileSync(join(server.workspace, 'python_path.pth'), 'utf8')
    .split('\n')
    .find((l) => l.trim());
  assert.ok(firstLine, 'python_path.pth fixture is empty');
  const deadline = Date.now() + 20_000;
  let text = '';
  while (Date.now() < deadline && !text.includes(firstLine.trim())) {
    text = await activeTextEditorText(page).catch(() => '');
    if (!text.includes(firstLine.trim())) await page.waitForTimeout(250);
  }
  assert.ok(text.includes(firstLine.trim()), `text editor does not show "${firstLine.trim()}"; it shows: ${text.slice(0, 200)}`);
  await page.screenshot({ path: join(resultsDir, 'e2e-reopen-text.png') });
});
