// The few things the browser e2e tests share: a test() to register with, and
// helpers that know how VS Code's workbench is put together in the DOM.
// scripts/e2e.mjs imports the *.e2e.mjs files, then runs what they registered.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** @typedef {{ page: import('playwright-core').Page, server: { folderUrl: string, workspace: string, userDataDir: string }, resultsDir: string }} TestContext */

/** @type {{ name: string, fn: (ctx: TestContext) => Promise<void>, timeoutMs: number }[]} */
export const registered = [];

/**
 * @param {string} name
 * @param {(ctx: TestContext) => Promise<void>} fn
 * @param {{ timeoutMs?: number }} [opts]
 */
export function test(name, fn, opts = {}) {
  registered.push({ name, fn, timeoutMs: opts.timeoutMs ?? 120_000 });
}

const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

/** Log files of the remote extension hosts started so far (one per window). */
function extensionHostLogs(userDataDir) {
  const logs = join(userDataDir, 'logs');
  if (!existsSync(logs)) return [];
  return readdirSync(logs, { recursive: true })
    .filter((f) => f.endsWith('remoteexthost.log'))
    .map((f) => join(logs, f));
}

/** Everything RepLens has written to its output channel so far, in every window of this server. */
export function replensLog(server) {
  const logs = join(server.userDataDir, 'logs');
  if (!existsSync(logs)) return '';
  return readdirSync(logs, { recursive: true })
    .filter((f) => f.endsWith('RepLens.log'))
    .map((f) => readFileSync(join(logs, f), 'utf8'))
    .join('\n');
}

async function waitForNewExtensionHost(userDataDir, before, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const log of extensionHostLogs(userDataDir)) {
      if (!before.includes(log) && readFileSync(log, 'utf8').includes('Eager extensions activated')) return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`this window's extension host did not finish starting within ${timeoutMs / 1000}s`);
}

/**
 * Loads the sample workspace and waits until the workbench, its Explorer,
 * RepLens' contributions and the window's extension host are there.
 */
export async function openWorkspace(page, server) {
  const earlierHosts = extensionHostLogs(server.userDataDir);
  await page.goto(server.folderUrl);
  await workbenchReady(page, server, earlierHosts);
}

/** Reloads the window as a user would (Developer: Reload Window) and waits as openWorkspace does. */
export async function reloadWindow(page, server) {
  const earlierHosts = extensionHostLogs(server.userDataDir);
  const loaded = page.waitForEvent('load', { timeout: 60_000 });
  await runCommand(page, 'Developer: Reload Window');
  await loaded;
  await workbenchReady(page, server, earlierHosts);
}

async function workbenchReady(page, server, earlierHosts) {
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  // The Explorer lists the folder only once the remote file system answered.
  await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 60_000 });
  const viewName = manifest.contributes.views.explorer[0].name;
  await page.locator('.pane-header', { hasText: viewName }).waitFor({ timeout: 60_000 });
  // Even with RepLens' view shown, a file clicked while the window's extension host
  // is still starting sometimes opened in the text editor (seen under load), so
  // wait until that host reports its startup done.
  await waitForNewExtensionHost(server.userDataDir, earlierHosts, 60_000);
}

/** Clicks a file in the Explorer tree, as a user opening it would. */
export async function openFromExplorer(page, fileName) {
  const tree = page.locator('.explorer-folders-view');
  const row = tree.getByRole('treeitem', { name: fileName, exact: true });
  // The tree only renders rows in view: scroll down until the file is there.
  for (let i = 0; i < 20 && !(await row.count()); i++) {
    await tree.hover();
    await page.mouse.wheel(0, 300);
    await page.waitForTimeout(100);
  }
  await row.click({ timeout: 20_000 });
}

/**
 * Webviews live two iframes deep (host frame, then the content frame), so look
 * through every frame for the RepLens editor showing fileName; returns that frame.
 */
export async function findReplensEditor(page, fileName, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let seen = [];
  while (Date.now() < deadline) {
    seen = [];
    for (const frame of page.frames()) {
      const root = frame.locator('[data-testid="replens-editor"]');
      try {
        if (!(await root.count())) continue;
        const text = await root.first().innerText();
        if (text.includes(fileName)) return frame;
        seen.push(text.split('\n')[0]);
      } catch {
        // frames come and go while the editor opens
      }
    }
    await page.waitForTimeout(250);
  }
  // Say what is on screen instead, so a failure log alone tells the story.
  const tab = await page
    .locator('.editor-group-container.active .tab.active')
    .first()
    .getAttribute('aria-label')
    .catch(() => null);
  const textEditors = await page.locator('.editor-group-container.active .monaco-editor').count();
  throw new Error(
    `no RepLens editor showing ${fileName} appeared within ${timeoutMs / 1000}s; ` +
      `active tab: ${tab ?? 'none'}; text editors in the active group: ${textEditors}; ` +
      `RepLens editors open: ${seen.length ? seen.join(' | ') : 'none'}`,
  );
}

/** Text of the active text editor (Monaco renders spaces as no-break spaces). */
export async function activeTextEditorText(page) {
  const lines = page.locator('.editor-group-container.active .monaco-editor .view-lines');
  await lines.first().waitFor({ timeout: 20_000 });
  return (await lines.first().innerText()).replace(/\u00a0/g, ' ');
}

/**
 * Sets the colour theme in the profile's user settings. code-server reads them when the
 * workbench loads and did not apply an edit of the file to an open window (tried: no change
 * within 15 s), so call this before openWorkspace. Settings outlive a test: set it back.
 */
export function setColorTheme(server, theme) {
  const file = join(server.userDataDir, 'User', 'settings.json');
  const settings = JSON.parse(readFileSync(file, 'utf8'));
  settings['workbench.colorTheme'] = theme;
  writeFileSync(file, JSON.stringify(settings, null, 2));
}

/**
 * Runs a command from the Command Palette by its title, as a user would. A webview tab clicked
 * just before takes its focus a moment later, and that closes a palette already open (seen about
 * once in 20 theme tests on a loaded machine): then the palette is opened again, up to 3 times.
 */
export async function runCommand(page, title) {
  const input = page.locator('.quick-input-widget input');
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    try {
      await input.waitFor({ timeout: 5_000 });
      await input.fill(`>${title}`, { timeout: 5_000 });
      await row.waitFor({ timeout: 20_000 });
      break;
    } catch (error) {
      if (attempt === 3 || (await input.isVisible())) throw error;
      console.log(`    [e2e] the Command Palette closed before "${title}" was chosen: opening it again`);
    }
  }
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden', timeout: 20_000 });
}

/** The first frame (webviews are two iframes deep) that has an element matching `selector`. */
export async function findFrame(page, selector, timeoutMs, what = selector) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      if (
        await frame
          .locator(selector)
          .count()
          .catch(() => 0)
      )
        return frame;
    }
    await page.waitForTimeout(100);
  }
  throw new Error(`no ${what} appeared within ${timeoutMs / 1000}s; frames: ${await describeFrames(page)}`);
}

/** What each webview frame holds: enough to tell a page that never ran from one still waiting. */
async function describeFrames(page) {
  const frames = await Promise.all(
    page.frames().map((frame) =>
      frame
        .evaluate(() => {
          const root = document.getElementById('root');
          return `${document.readyState}, ${document.body?.dataset.view ?? 'no RepLens page'}${root ? `, #root ${root.childElementCount} children` : ''}`;
        })
        .then(
          (state) => `${shortUrl(frame)} (${state})`,
          () => `${shortUrl(frame)} (unreadable)`,
        ),
    ),
  );
  return frames.join('; ');
}

const shortUrl = (frame) =>
  frame
    .url()
    .replace(/[?#].*/, '')
    .split('/')
    .slice(-2)
    .join('/');

/**
 * Closes the report panel of `file`, then clicks Open Report in the model editor of `file`.
 * Returns when the click happened (ms since the epoch, as the editor's page saw it).
 */
export async function reopenReport(page, file) {
  const tab = page.locator('.tab', { hasText: `Report: ${file}` });
  await tab.click();
  await tab.locator('.tab-actions .action-label').click();
  await tab.waitFor({ state: 'detached', timeout: 20_000 });
  const editor = await findReplensEditor(page, file);
  await editor.evaluate(() => {
    window.__replensClickAt = null;
    addEventListener('click', (e) => (window.__replensClickAt = performance.timeOrigin + e.timeStamp), { capture: true, once: true });
  });
  await editor.getByRole('button', { name: 'Open Report' }).click();
  return editor.evaluate(() => window.__replensClickAt);
}

/** Right-click on `file` in the Explorer, then the context menu item `label`. */
export async function fromExplorerMenu(page, file, label) {
  const row = page.locator('.explorer-folders-view').getByRole('treeitem', { name: file, exact: true });
  await row.click({ button: 'right' });
  const item = page.getByRole('menuitem', { name: label, exact: true });
  await item.waitFor({ timeout: 20_000 });
  // Menus near the bottom edge are still sliding in when first found: hover, then choose with the keyboard.
  await item.hover();
  await page.keyboard.press('Enter');
}

/**
 * Places where the text inside the elements matching `selector` wraps inside a word: the
 * break is neither at a space nor after a '/', '.', '_' or '-' that is followed by a letter
 * (so '1.00e-4' may not split at its minus sign either). Returns 'before|after' snippets.
 */
export async function midWordBreaks(frame, selector) {
  return frame.locator(selector).evaluateAll((elements) => {
    const found = [];
    for (const el of elements) {
      const chars = [];
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (let i = 0; i < node.data.length; i++) {
          const range = document.createRange();
          range.setStart(node, i);
          range.setEnd(node, i + 1);
          const rect = range.getClientRects()[0];
          // A space the line break swallowed has no box; remember it as a gap.
          if (!rect || /\s/.test(node.data[i])) chars.push({ gap: true });
          else chars.push({ ch: node.data[i], top: rect.top, height: rect.height });
        }
        chars.push({ gap: true }); // element boundaries (cells, spans) are break opportunities too
      }
      let prev = null;
      let gap = false;
      for (const c of chars) {
        if (c.gap) {
          gap = true;
          continue;
        }
        if (prev && !gap && c.top > prev.top + prev.height / 2) {
          const sensible = /[/._\\-]/.test(prev.ch) && !/\d/.test(c.ch);
          if (!sensible) found.push(`${prev.ch}|${c.ch} in "${el.textContent.trim().slice(0, 60)}"`);
        }
        prev = c;
        gap = false;
      }
    }
    return found;
  });
}

/** Selects the report of `file` (not one another test left open) in any frame. */
export const reportOf = (file) => `[data-testid="replens-report"] h1[title$="/${file}"]`;

/** Right-click → Convert to Deploy on `file`, wait for `output`, then for a report with a PASS verdict. */
export async function convertFromExplorer(page, server, file, output, timeoutMs = 120_000) {
  await openFromExplorer(page, file);
  await fromExplorerMenu(page, file, 'Convert to Deploy');

  const written = join(server.workspace, output);
  const deadline = Date.now() + 60_000;
  while (!existsSync(written) && Date.now() < deadline) await page.waitForTimeout(250);
  assert.ok(existsSync(written), `${output} was not written`);

  // The report opens beside the editor once parity has run in onnxruntime; reports of other files may be open too.
  const report = await findFrame(page, reportOf(file), timeoutMs, `report of ${file} with a parity verdict`);
  const verdictBadge = report.locator('[data-testid="verdict"]').first();
  await verdictBadge.waitFor({ timeout: timeoutMs });
  const verdict = (await verdictBadge.innerText()).trim();
  assert.match(verdict, /PASS/, `parity verdict: ${verdict}`);
  return report;
}
