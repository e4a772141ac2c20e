// The model editor and the report under each of VS Code's default theme kinds, in the real
// workbench: the screenshots are for looking at (and for the README), the checks that each
// webview got the theme and that the selection and keyboard focus are drawn.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { findFrame, findReplensEditor, openFromExplorer, openWorkspace, runCommand, setColorTheme, test } from './harness.mjs';

const DEFAULT_THEME = 'Default Dark Modern';
const THEMES = [
  { name: 'Default Dark Modern', slug: 'dark', bodyClass: 'vscode-dark' },
  { name: 'Default Light Modern', slug: 'light', bodyClass: 'vscode-light' },
  { name: 'Default High Contrast', slug: 'hc', bodyClass: 'vscode-high-contrast' },
  { name: 'Default High Contrast Light', slug: 'hc-light', bodyClass: 'vscode-high-contrast-light' },
];

for (const theme of THEMES) {
  test(
    `the editor and the report in ${theme.name}`,
    async ({ page, server, resultsDir }) => {
      setColorTheme(server, theme.name);
      try {
        await openWorkspace(page, server);
        await openFromExplorer(page, 'repvgg_tiny_train.pth');
        const editor = await findReplensEditor(page, 'repvgg_tiny_train.pth');
        await editor.locator(`body.${theme.bodyClass}`).waitFor({ timeout: 20_000 });
        await editor.locator('[data-testid="stages"]').waitFor({ timeout: 30_000 });
        await page.screenshot({ path: join(resultsDir, `e2e-theme-${theme.slug}-editor.png`) });

        await editor.getByRole('button', { name: 'Check Parity' }).click();
        const report = await findFrame(page, '[data-testid="verdict"]', 120_000, 'report with a parity verdict');
        assert.ok(await report.locator(`body.${theme.bodyClass}`).count(), `the report webview is not in ${theme.bodyClass}`);
        // The report opens beside the editor without taking focus: focus its group, then give it the window.
        await page.locator('.tab', { hasText: 'Report: repvgg_tiny_train.pth' }).click();
        await runCommand(page, 'View: Toggle Maximize Editor Group');

        await report.locator('[data-testid="tab-graphs"]').click();
        // stage0 has six nodes: the seventh is the first of stage1.0, so the selection sits below stage0.
        await report.locator('[data-testid="graph-before"] .rl-block-node').nth(6).click({ timeout: 20_000 });
        await report.locator('[data-testid="graph-after"] .rl-selected').first().waitFor({ timeout: 20_000 });
        await report.locator('[data-testid="detail-card"] h3').waitFor({ timeout: 20_000 });
        // The arrow keys move the keyboard focus to the next block, which gets a focus outline of its own.
        await report.locator('[data-testid="graph-before"] .rl-pane-body').focus();
        await page.keyboard.press('ArrowDown');
        await report.locator('[data-testid="graph-before"] .rl-block-node:focus').waitFor({ timeout: 20_000 });
        const outline = await report.locator('[data-testid="graph-before"] .rl-block-node:focus rect').evaluate((r) => getComputedStyle(r).strokeDasharray);
        assert.notEqual(outline, 'none', 'the focused node has no dashed focus outline');
        await page.screenshot({ path: join(resultsDir, `e2e-theme-${theme.slug}-report.png`) });
        // The other two tabs, for their tables, histogram and badges in this theme.
        await report.locator('[data-testid="tab-summary"]').click();
        await report.locator('[data-testid="block-table"]').waitFor({ timeout: 20_000 });
        await page.screenshot({ path: join(resultsDir, `e2e-theme-${theme.slug}-summary.png`) });
        await report.locator('[data-testid="tab-quantization"]').click();
        await report.locator('[data-testid="quant-table"]').waitFor({ timeout: 20_000 });
        await page.screenshot({ path: join(resultsDir, `e2e-theme-${theme.slug}-quantization.png`) });
      } finally {
        setColorTheme(server, DEFAULT_THEME);
      }
    },
    { timeoutMs: 240_000 },
  );
}
