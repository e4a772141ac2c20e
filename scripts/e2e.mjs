// End-to-end tests in a real VS Code: packages the VSIX, installs it into a fresh
// code-server, drives that with Debian's Chromium through playwright-core, runs
// test/e2e/*.e2e.mjs, then runs the extension host suite (test/e2e/electron/suite)
// inside code-server's own extension host.
//
//   node scripts/e2e.mjs [--no-package] [--grep TEXT]
//     --no-package  reuses replens-linux-x64.vsix
//     --grep TEXT   runs only the browser tests whose name contains TEXT, and not the extension host suite
//
// Screenshots, the report timings (perf.json), and on failure the logs, go to test-results/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';
import { chromium } from 'playwright-core';
import { bundleExtensionSuite, suiteEntry } from './e2e-electron.mjs';
import { ensureCodeServer, repoRoot, startCodeServer } from './vscode-server.mjs';

const CHROMIUM = process.env.REPLENS_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', // runs as root in containers
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const VIEWPORT = { width: 1400, height: 900 };
const RUN_TIMEOUT_MS = 20 * 60_000;
// The load test alone (50 opens, 20 conversions) takes about two minutes on a 2-core machine.
const SUITE_TIMEOUT_MS = 480_000;

const resultsDir = join(repoRoot, 'test-results');
const vsix = join(repoRoot, 'replens-linux-x64.vsix');
const started = Date.now();
const timings = [];
const results = []; // { name, ok, seconds, error? }

const seconds = (since) => (Date.now() - since) / 1000;
const log = (...a) => console.log('[e2e]', ...a);

async function phase(name, fn) {
  const t = Date.now();
  try {
    return await fn();
  } finally {
    timings.push(`${name} ${seconds(t).toFixed(1)}s`);
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms / 1000}s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const slug = (name) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 60);

function record(name, ok, secs, error) {
  results.push({ name, ok, secs, error });
  console.log(`${ok ? '✔' : '✘'} ${name} (${secs.toFixed(1)}s)`);
  // Playwright colours its call logs; keep the output plain for CI logs.
  // eslint-disable-next-line no-control-regex -- ESC starts every colour code
  if (error) console.log(error.replace(/\x1b\[[0-9;]*m/g, '').replace(/^/gm, '    '));
}

async function runBrowserTests(browser, server, grep) {
  const harness = await import(pathToFileURL(join(repoRoot, 'test', 'e2e', 'harness.mjs')).href);
  const files = readdirSync(join(repoRoot, 'test', 'e2e'))
    .filter((f) => f.endsWith('.e2e.mjs'))
    .sort();
  for (const f of files) await import(pathToFileURL(join(repoRoot, 'test', 'e2e', f)).href);
  const chosen = harness.registered.filter((t) => !grep || t.name.includes(grep));
  log(`${chosen.length} of ${harness.registered.length} browser test(s) from ${files.join(', ')}`);

  for (const t of chosen) {
    // A fresh browser profile per test: VS Code keeps open editors in browser storage.
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    const consoleErrors = [];
    // What the webview frames say of their service worker: a frame waits for it before it loads its page.
    const workerNotes = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
      if (/service worker|controllerchange/i.test(m.text())) workerNotes.push(`${new Date().toISOString()} ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    const t0 = Date.now();
    try {
      await withTimeout(t.fn({ page, server, resultsDir }), t.timeoutMs, `"${t.name}"`);
      record(t.name, true, seconds(t0));
    } catch (err) {
      const base = join(resultsDir, `e2e-fail-${slug(t.name)}`);
      await page.screenshot({ path: `${base}.png` }).catch(() => {});
      writeFileSync(`${base}.console.txt`, [...consoleErrors, ...workerNotes].join('\n'));
      // CI keeps only what is printed: the last words of RepLens and of the webview frames.
      const tail = (lines, n) =>
        lines
          .slice(-n)
          .map((l) => `  ${l.slice(0, 300)}`)
          .join('\n') || '  (none)';
      const replensLines = harness.replensLog(server).split('\n').filter(Boolean);
      record(
        t.name,
        false,
        seconds(t0),
        `${err.stack || err}\nscreenshot: ${base}.png\nRepLens log, last lines:\n${tail(replensLines, 12)}\nservice worker notes, last lines:\n${tail(workerNotes, 6)}`,
      );
    } finally {
      await context.close();
    }
  }
}

/**
 * code-server has no --extensionTestsPath flag, but its web workbench takes the
 * same settings from the `payload` query parameter and hands them to the remote
 * extension host, which then loads the mocha suite instead of a normal session.
 * The workbench reports the result through window.codeAutomationExit and streams
 * its log through window.codeAutomationLog, both provided here by the page.
 */
async function runExtensionHostSuite(browser, server) {
  const { RESULT_MARKER } = createRequire(import.meta.url)(suiteEntry);
  const installed = readdirSync(server.extensionsDir).find((d) => d.startsWith('replens.replens-'));
  if (!installed) throw new Error(`RepLens is not in ${server.extensionsDir}`);
  const remote = (path) => `vscode-remote://127.0.0.1:${server.port}${encodeURI(path)}`;
  const payload = [
    // The installed VSIX, so the suite checks what users get, not the source tree.
    ['extensionDevelopmentPath', remote(join(server.extensionsDir, installed))],
    ['extensionTestsPath', remote(suiteEntry)],
  ];

  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  const lines = [];
  let exited;
  const exitCode = new Promise((resolve) => (exited = resolve));
  await page.exposeFunction('codeAutomationLog', (_level, args) => lines.push(format(...args)));
  await page.exposeFunction('codeAutomationExit', (code) => exited(code));
  try {
    await page.goto(`${server.folderUrl}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
    const code = await withTimeout(exitCode, SUITE_TIMEOUT_MS, 'extension host suite');
    const marked = lines.find((l) => l.startsWith(RESULT_MARKER));
    if (!marked) throw new Error(`extension host exited with ${code} without a result line; see test-results/exthost-suite.log`);
    const { passed, failed } = JSON.parse(marked.slice(RESULT_MARKER.length));
    if (code !== 0 && failed.length === 0) throw new Error(`extension host exited with ${code} although no test failed`);
    return { passed, failed };
  } finally {
    writeFileSync(join(resultsDir, 'exthost-suite.log'), lines.join('\n'));
    // The load test's measurements (suite/load.test.ts), also in test-results/load.json.
    for (const line of lines.filter((l) => l.startsWith('[replens-load]'))) log(line);
    await context.close();
  }
}

async function main() {
  const skipPackage = process.argv.includes('--no-package');
  const grepAt = process.argv.indexOf('--grep');
  const grep = grepAt < 0 ? undefined : process.argv[grepAt + 1];
  // test-results/ is shared with other tools: clear only what this script writes.
  mkdirSync(resultsDir, { recursive: true });
  for (const f of readdirSync(resultsDir)) {
    if (/^(e2e-|exthost-suite\.log$|load\.json$|perf\.json$|code-server-logs$)/.test(f)) rmSync(join(resultsDir, f), { recursive: true, force: true });
  }

  const cs = await phase('code-server check/install', ensureCodeServer);
  if (!skipPackage) {
    await phase('npm run package', async () => {
      const { status } = spawnSync('npm', ['run', 'package'], { cwd: repoRoot, stdio: 'inherit' });
      if (status !== 0) throw new Error('npm run package failed');
    });
  }
  if (!existsSync(vsix)) throw new Error(`${vsix} is missing; run npm run package`);
  await phase('bundle extension host suite', bundleExtensionSuite);

  const server = await phase('start code-server + install VSIX', () => startCodeServer({ vsix }));
  let browser;
  try {
    browser = await phase('launch chromium', () => chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 }));
    log(`real VS Code: code-server ${cs.version} at ${server.url}`);
    log(`real browser: Chromium ${browser.version()} (${CHROMIUM}, headless)`);

    await phase('browser tests', () => runBrowserTests(browser, server, grep));

    if (!grep)
      await phase('extension host suite in code-server', async () => {
        const t0 = Date.now();
        try {
          const { passed, failed } = await runExtensionHostSuite(browser, server);
          for (const p of passed) record(`[extension host] ${p.title}`, true, p.ms / 1000);
          for (const f of failed) record(`[extension host] ${f.title}`, false, f.ms / 1000, f.message);
        } catch (err) {
          record('[extension host] suite', false, seconds(t0), String(err.stack || err));
        }
      });
  } finally {
    if (results.some((r) => !r.ok)) server.collectLogs(join(resultsDir, 'code-server-logs'));
    await browser?.close();
    await server.stop();
  }
}

const watchdog = setTimeout(() => {
  console.error(`[e2e] the whole run exceeded ${RUN_TIMEOUT_MS / 60_000} minutes`);
  process.exit(1); // exit handlers stop code-server; playwright kills Chromium
}, RUN_TIMEOUT_MS);
watchdog.unref();

try {
  await main();
} catch (err) {
  record('e2e setup', false, 0, String(err.stack || err));
}
const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`[e2e] timing: ${timings.join(', ')}; total ${seconds(started).toFixed(1)}s`);
if (failed) console.log(`[e2e] failure artefacts in ${resultsDir}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed || passed === 0 ? 1 : 0);
