// Development preview of the report webview (not shipped, not a test): builds dist/webview.js,
// serves it in the page RepLens gives its webviews (same Content-Security-Policy) with a fake
// acquireVsCodeApi, posts sample reports, screenshots them in dark, light and high-contrast
// themes and measures how long a 5,000-node report takes from message to interactive.
//
//   node test/unit/webview/preview.mjs [--no-build] [--out /tmp/replens-preview]
import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';

const repo = resolve(import.meta.dirname, '../../..');
const args = process.argv.slice(2);
const out = args.includes('--out') ? args[args.indexOf('--out') + 1] : '/tmp/replens-preview';
mkdirSync(out, { recursive: true });

if (!args.includes('--no-build')) execSync('npm run build', { cwd: repo, stdio: 'inherit' });

// The sample builders, the host's packing of a report for its message and the webview page are TypeScript; bundle them for Node to import here.
const samplePath = join(out, 'sample.mjs');
await esbuild.build({
  stdin: {
    contents: `export * from './test/unit/webview/sampleReport'; export { packReport } from './src/shared/protocol'; export { webviewPage } from './src/shared/webviewPage';`,
    resolveDir: repo,
    loader: 'ts',
  },
  bundle: true,
  format: 'esm',
  platform: 'node',
  outfile: samplePath,
  logLevel: 'warning',
});
const { smallSample, largeSample, sampleReport, packReport, webviewPage } = await import(pathToFileURL(samplePath).href);

const THEMES = {
  dark: {
    bodyClass: 'vscode-dark',
    vars: {
      foreground: '#cccccc',
      'editor-background': '#1f1f1f',
      'editor-foreground': '#cccccc',
      descriptionForeground: '#9d9d9d',
      focusBorder: '#0078d4',
      'button-background': '#0078d4',
      'button-foreground': '#ffffff',
      'button-hoverBackground': '#026ec1',
      'button-secondaryBackground': '#313131',
      'button-secondaryForeground': '#cccccc',
      'button-secondaryHoverBackground': '#3c3c3c',
      'button-border': '#ffffff12',
      'badge-background': '#616161',
      'badge-foreground': '#f8f8f8',
      'panel-background': '#181818',
      'panel-border': '#2b2b2b',
      'panelTitle-activeBorder': '#0078d4',
      'panelTitle-activeForeground': '#cccccc',
      'panelTitle-inactiveForeground': '#9d9d9d',
      'editorWidget-background': '#202020',
      'editorWidget-border': '#313131',
      'list-activeSelectionBackground': '#04395e',
      'list-activeSelectionForeground': '#ffffff',
      'list-hoverBackground': '#2a2d2e',
      'list-inactiveSelectionBackground': '#37373d',
      'progressBar-background': '#0078d4',
      'charts-red': '#f14c4c',
      'charts-blue': '#3794ff',
      'charts-yellow': '#cca700',
      'charts-orange': '#d18616',
      'charts-green': '#89d185',
      'charts-lines': '#cccccc80',
      'testing-iconFailed': '#f14c4c',
      'testing-iconPassed': '#73c991',
      errorForeground: '#f85149',
      'editorWarning-foreground': '#cca700',
      'textLink-foreground': '#4daafc',
      'textLink-activeForeground': '#4daafc',
      'textBlockQuote-background': '#2b2b2b',
      'editor-inactiveSelectionBackground': '#3a3d41',
      'scrollbarSlider-background': '#79797966',
      'scrollbarSlider-hoverBackground': '#646464b3',
      'scrollbarSlider-activeBackground': '#bfbfbf66',
    },
  },
  light: {
    bodyClass: 'vscode-light',
    vars: {
      foreground: '#3b3b3b',
      'editor-background': '#ffffff',
      'editor-foreground': '#3b3b3b',
      descriptionForeground: '#717171',
      focusBorder: '#005fb8',
      'button-background': '#005fb8',
      'button-foreground': '#ffffff',
      'button-hoverBackground': '#0258a8',
      'button-secondaryBackground': '#e5e5e5',
      'button-secondaryForeground': '#3b3b3b',
      'button-secondaryHoverBackground': '#cccccc',
      'button-border': '#0000001a',
      'badge-background': '#cccccc',
      'badge-foreground': '#3b3b3b',
      'panel-background': '#f8f8f8',
      'panel-border': '#e5e5e5',
      'panelTitle-activeBorder': '#005fb8',
      'panelTitle-activeForeground': '#3b3b3b',
      'panelTitle-inactiveForeground': '#3b3b3b',
      'editorWidget-background': '#f8f8f8',
      'editorWidget-border': '#c8c8c8',
      'list-activeSelectionBackground': '#e8e8e8',
      'list-activeSelectionForeground': '#000000',
      'list-hoverBackground': '#f2f2f2',
      'list-inactiveSelectionBackground': '#e4e6f1',
      'progressBar-background': '#005fb8',
      'charts-red': '#e51400',
      'charts-blue': '#1a85ff',
      'charts-yellow': '#bf8803',
      'charts-orange': '#d18616',
      'charts-green': '#388a34',
      'charts-lines': '#61616180',
      'testing-iconFailed': '#f14c4c',
      'testing-iconPassed': '#388a34',
      errorForeground: '#a1260d',
      'editorWarning-foreground': '#bf8803',
      'textLink-foreground': '#005fb8',
      'textLink-activeForeground': '#005fb8',
      'textBlockQuote-background': '#f8f8f8',
      'editor-inactiveSelectionBackground': '#e5ebf1',
      'scrollbarSlider-background': '#64646466',
      'scrollbarSlider-hoverBackground': '#646464b3',
      'scrollbarSlider-activeBackground': '#00000099',
    },
  },
  'high-contrast': {
    bodyClass: 'vscode-high-contrast',
    vars: {
      foreground: '#ffffff',
      'editor-background': '#000000',
      'editor-foreground': '#ffffff',
      descriptionForeground: '#ffffffb3',
      focusBorder: '#f38518',
      contrastBorder: '#6fc3df',
      contrastActiveBorder: '#f38518',
      'button-background': '#000000',
      'button-foreground': '#ffffff',
      'button-border': '#6fc3df',
      'button-secondaryForeground': '#ffffff',
      'badge-background': '#000000',
      'badge-foreground': '#ffffff',
      'panel-border': '#6fc3df',
      'panelTitle-activeBorder': '#6fc3df',
      'panelTitle-activeForeground': '#ffffff',
      'panelTitle-inactiveForeground': '#ffffff',
      'editorWidget-background': '#0c141f',
      'editorWidget-border': '#6fc3df',
      'list-activeSelectionForeground': '#ffffff',
      'progressBar-background': '#6fc3df',
      'charts-red': '#f14c4c',
      'charts-blue': '#3794ff',
      'charts-yellow': '#cca700',
      'charts-orange': '#d18616',
      'charts-green': '#89d185',
      'charts-lines': '#ffffff80',
      'testing-iconFailed': '#f14c4c',
      'testing-iconPassed': '#73c991',
      errorForeground: '#f48771',
      'editorWarning-foreground': '#ffd370',
      'textLink-foreground': '#21a6ff',
      'textBlockQuote-background': '#000000',
    },
  },
};

const FONT = { 'font-family': 'system-ui, "Ubuntu", "Droid Sans", sans-serif', 'font-size': '13px', 'font-weight': 'normal' };
/** The theme's variables, as VS Code puts them on the page. */
function themeCss(theme) {
  const vars = Object.entries({ ...FONT, ...THEMES[theme].vars })
    .map(([k, v]) => `  --vscode-${k}: ${v};`)
    .join('\n');
  return `html {\n${vars}\n}\n`;
}

// The stand-in for VS Code's webview API: records what the page posts and keeps its state.
const FAKE_API = `window.__posted = [];
window.__state = JSON.parse(sessionStorage.getItem('replens-state') || 'null') ?? undefined;
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' at ' + e.sourceFile.split('/').pop() + ':' + e.lineNumber + ':' + e.columnNumber));
let acquired = 0;
window.acquireVsCodeApi = () => {
  if (++acquired > 1) throw new Error('acquireVsCodeApi called twice');
  return {
    postMessage: (m) => { window.__posted.push(m); console.log('postMessage ' + JSON.stringify(m)); },
    getState: () => window.__state,
    setState: (s) => { window.__state = s; window.__setStates = (window.__setStates || 0) + 1; },
  };
};
`;

const ORIGIN = 'https://replens.test';
const NONCE = 'cHJldmlldw==';
/**
 * The page RepLens gives its webviews, plus what VS Code adds to it: the theme's variables and
 * body class, and the webview API (here, the stand-in), which runs before the page's own script.
 */
function page(theme) {
  const real = webviewPage({
    view: 'report',
    title: 'preview',
    script: readFileSync(join(repo, 'dist', 'webview.js'), 'utf8'),
    style: readFileSync(join(repo, 'media', 'replens.css'), 'utf8'),
    nonce: NONCE,
  });
  const added = `<style nonce="${NONCE}">${themeCss(theme)}</style>
<script nonce="${NONCE}">${FAKE_API}</script>
</head>`;
  const body = `<body data-view="report" class="${THEMES[theme].bodyClass}" data-vscode-theme-kind="${THEMES[theme].bodyClass}">`;
  return real.replace('</head>', added).replace('<body data-view="report">', body);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const problems = [];
const csp = new Set();

async function open(theme, { width = 1400, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
  const p = await context.newPage();
  p.on('console', (m) => {
    // CSP reports are collected with their source position by fake-api.js instead.
    if ((m.type() === 'error' || m.type() === 'warning') && !m.text().includes('Content Security Policy'))
      problems.push(`[${theme}] console.${m.type()}: ${m.text()}`);
  });
  p.on('pageerror', (e) => problems.push(`[${theme}] page error: ${e.message}`));
  await p.route(`${ORIGIN}/**`, (route) => {
    // The page loads nothing more: it carries its script and stylesheet.
    const path = new URL(route.request().url()).pathname;
    return path === '/index.html' ? route.fulfill({ body: page(theme), contentType: 'text/html' }) : route.abort();
  });
  await p.goto(`${ORIGIN}/index.html`);
  await p
    .waitForFunction(() => window.__posted?.some((m) => m.type === 'ready'), null, { timeout: 15000 })
    .catch((e) => {
      throw new Error(`the page did not say ready: ${problems.join('; ')}`, { cause: e });
    });
  return p;
}

/** The id the host would have stored the sample reports under. */
const STORED_AS = 'mf0abc12-0123abcd';

/**
 * Posts a report; resolves with ms from the message to the first frame painted after it with
 * the main thread free again (interactive), and to all three tabs built (they build when idle).
 */
async function postReport(p, report) {
  // Hand the report to the page first, so the measurement does not include Playwright's own transfer.
  await p.evaluate((r) => {
    window.__report = r;
  }, packReport(report));
  return p.evaluate(
    (STORED_AS) =>
      new Promise((done) => {
        const root = document.getElementById('root');
        const t0 = performance.now();
        let interactive;
        const allBuilt = () => ['graph-before', 'graph-after', 'quant-table', 'block-table'].every((id) => root.querySelector(`[data-testid=${id}]`));
        const poll = () => (allBuilt() ? done({ interactive, allTabs: performance.now() - t0 }) : setTimeout(poll, 5));
        new MutationObserver((_, obs) => {
          if (!root.querySelector('[data-testid=replens-report]')) return;
          obs.disconnect();
          requestAnimationFrame(() =>
            setTimeout(() => {
              interactive = performance.now() - t0;
              poll();
            }),
          );
        }).observe(root, { childList: true, subtree: true });
        window.postMessage({ type: 'report', report: window.__report, storedAs: STORED_AS }, '*');
      }),
    STORED_AS,
  );
}

/** ms from a DOM event to the next painted frame. */
async function timeToFrame(p, action) {
  return p.evaluate(
    (code) =>
      new Promise((done) => {
        const t0 = performance.now();
        new Function(code)();
        requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
      }),
    action,
  );
}

const shot = async (p, name) => {
  const file = join(out, `${name}.png`);
  await p.screenshot({ path: file });
  return file;
};
const tab = (p, id) => p.click(`[data-testid=tab-${id}]`);
const settle = (p) => p.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50))));
const files = [];

const small = smallSample();
for (const theme of Object.keys(THEMES)) {
  const p = await open(theme);
  if (theme === 'dark') {
    await p.evaluate(() => window.postMessage({ type: 'reportProgress', message: 'Checking repvgg_a0_train.pth…' }, '*'));
    await settle(p);
    files.push(await shot(p, `${theme}-0-progress`));
  }
  await postReport(p, small);
  await settle(p);
  files.push(await shot(p, `${theme}-1-summary`));
  await tab(p, 'graphs');
  await settle(p);
  files.push(await shot(p, `${theme}-2-graphs`));
  // Select a block by clicking one of its nodes in the train-form pane: the other pane follows.
  await p.click('[data-testid=graph-before] g.rl-block-node[data-i="12"]');
  await settle(p);
  files.push(await shot(p, `${theme}-3-selected`));
  // Select a failing block from the table: the view switches to the graphs and brings it into both panes.
  await tab(p, 'summary');
  await p.click('[data-testid=block-table] tr[data-block="stage2.2"]');
  await settle(p);
  files.push(await shot(p, `${theme}-3b-failing-from-table`));
  await tab(p, 'quantization');
  await settle(p);
  files.push(await shot(p, `${theme}-4-quantization`));
  csp.add(...(await p.evaluate(() => window.__cspViolations)));
  if (theme === 'dark') {
    const posted = await p.evaluate(() => window.__posted);
    console.log('posted by the page:', JSON.stringify(posted));
    await tab(p, 'summary');
    await p.click('[data-testid=block-table] th:nth-child(4) button');
    await settle(p);
    files.push(await shot(p, `${theme}-5-sorted-by-maxrel`));
    await tab(p, 'graphs');
    await p.click('[data-testid=graph-after] .rl-group-label[data-stage="stage2"]');
    await settle(p);
    files.push(await shot(p, `${theme}-6-after-stage2-collapsed`));
    // Hide/restore: a new page gets the state the old one saved (the report's id and the UI); the host
    // reads the report back from its store and sends it again, and the page must look as it did.
    await p.evaluate(() => new Promise((r) => setTimeout(r, 600)));
    const saved = await p.evaluate(() => JSON.stringify(window.__state));
    await p.evaluate((s) => sessionStorage.setItem('replens-state', s), saved);
    await p.reload();
    await p.waitForSelector('[data-testid=replens-report-progress]');
    await p.evaluate(([report, storedAs]) => window.postMessage({ type: 'report', report, storedAs }, '*'), [packReport(small), STORED_AS]);
    await p.waitForSelector('[data-testid=replens-report]');
    await settle(p);
    files.push(await shot(p, `${theme}-7-restored`));
    await p.evaluate(() => window.postMessage({ type: 'revealBlock', block: 'stage3.12' }, '*'));
    await settle(p);
    files.push(await shot(p, `${theme}-8-revealed-by-host`));
    // Keyboard only: into the train-form pane, two blocks down from the selection (stage3.12), Enter selects.
    await p.focus('[data-testid=graph-before] .rl-pane-body');
    for (let i = 0; i < 2; i++) await p.keyboard.press('ArrowDown');
    await p.keyboard.press('Enter');
    await settle(p);
    const last = await p.evaluate(() => window.__posted.at(-1));
    console.log('keyboard selection posted:', JSON.stringify(last), last?.block === 'stage4.0' ? '(as expected)' : '(UNEXPECTED: wanted stage4.0)');
    files.push(await shot(p, `${theme}-9-keyboard`));
    // A restored page whose report the host no longer has: the reason, and a button to run the check again.
    await p.evaluate(() =>
      window.postMessage(
        {
          type: 'reportUnavailable',
          message:
            '/home/user/.config/Code/User/globalStorage/replens.replens/reports/mf0abc12-0123abcd.report.json: the stored report is gone (RepLens keeps the latest 20)',
        },
        '*',
      ),
    );
    await settle(p);
    files.push(await shot(p, `${theme}-10-unavailable`));
    await p.click('[data-testid=rerun-report]');
    await settle(p);
    console.log('re-run button posted:', JSON.stringify(await p.evaluate(() => window.__posted.at(-1))));
    files.push(await shot(p, `${theme}-11-rerunning`));
    await p.evaluate(() => sessionStorage.clear());
  }
  await p.context().close();
}

// Parity that could not run.
{
  const p = await open('light', { width: 1000, height: 700 });
  await postReport(p, sampleReport({ stages: [1, 2, 4], widths: [32, 64, 128], noParity: true }));
  await settle(p);
  files.push(await shot(p, 'light-9-not-run'));
  await p.context().close();
}

// Responsiveness with >= 5,000 nodes.
const large = largeSample();
const timings = {};
{
  const p = await open('dark');
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await postReport(p, large));
  timings.reportToInteractiveMs = runs.map((v) => Math.round(v.interactive));
  timings.reportToAllTabsBuiltMs = runs.map((v) => Math.round(v.allTabs));
  timings.nodes = { before: large.before.nodes.length, after: large.after.nodes.length, blocks: large.blocks.length };
  timings.tabToGraphsMs = Math.round(await timeToFrame(p, `document.querySelector('[data-testid=tab-graphs]').click()`));
  await settle(p);
  files.push(await shot(p, 'dark-large-graphs'));
  timings.selectBlockMs = Math.round(
    await timeToFrame(
      p,
      `document.querySelectorAll('[data-testid=graph-before] g.rl-block-node')[40].dispatchEvent(new MouseEvent('click', { bubbles: true }))`,
    ),
  );
  const wheel = [];
  for (let i = 0; i < 10; i++) {
    wheel.push(
      await timeToFrame(
        p,
        `const s = document.querySelector('[data-testid=graph-before] .rl-pane-body'); const r = s.getBoundingClientRect(); s.dispatchEvent(new WheelEvent('wheel', { deltaY: ${i < 5 ? 200 : -200}, clientX: r.left + 100, clientY: r.top + 100, bubbles: true, cancelable: true }))`,
      ),
    );
  }
  timings.wheelZoomFrameMs = { median: Math.round(wheel.sort((a, b) => a - b)[5]), max: Math.round(wheel.at(-1)) };
  for (let i = 0; i < 6; i++)
    await timeToFrame(
      p,
      `const s = document.querySelector('[data-testid=graph-before] .rl-pane-body'); const r = s.getBoundingClientRect(); s.dispatchEvent(new WheelEvent('wheel', { deltaY: 300, clientX: r.left + 250, clientY: r.top + 300, bubbles: true, cancelable: true }))`,
    );
  await settle(p);
  files.push(await shot(p, 'dark-large-overview'));
  timings.fitAllMs = Math.round(await timeToFrame(p, `document.querySelector('[data-testid=graph-before] vscode-button:nth-child(3)').click()`));
  await settle(p);
  files.push(await shot(p, 'dark-large-fit'));
  timings.collapseStageMs = Math.round(
    await timeToFrame(
      p,
      `document.querySelector('[data-testid=graph-before] .rl-group-label[data-stage="stage3"]').dispatchEvent(new MouseEvent('click', { bubbles: true }))`,
    ),
  );
  timings.summaryTabMs = Math.round(await timeToFrame(p, `document.querySelector('[data-testid=tab-summary]').click()`));
  timings.sortTableMs = Math.round(await timeToFrame(p, `document.querySelector('[data-testid=block-table] th:nth-child(4) button').click()`));
  timings.quantTabMs = Math.round(await timeToFrame(p, `document.querySelector('[data-testid=tab-quantization]').click()`));
  await p.evaluate(() => new Promise((r) => setTimeout(r, 600)));
  // What VS Code serializes on each save: the report's id and the UI state, not the report.
  Object.assign(
    timings,
    await p.evaluate(() => {
      const t0 = performance.now();
      const bytes = JSON.stringify(window.__state).length;
      return { savedStateBytes: bytes, stateSerializeMs: Math.round(performance.now() - t0) };
    }),
  );
  await p.context().close();
}
await browser.close();

console.log('screenshots:\n  ' + files.join('\n  '));
console.log('timings:', JSON.stringify(timings, null, 2));
console.log(
  `load average while measuring: ${(await import('node:os'))
    .loadavg()
    .map((v) => v.toFixed(1))
    .join(' ')} on ${(await import('node:os')).cpus().length} cores`,
);
console.log(problems.length ? `problems:\n  ${problems.join('\n  ')}` : 'no console errors or page errors');
console.log(csp.size ? `CSP reports (source positions in the page, whose script is dist/webview.js):\n  ${[...csp].join('\n  ')}` : 'no CSP reports');
