import * as esbuild from 'esbuild';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { webviewPage } from '../../../src/shared/webviewPage';

const ROOT = path.join(__dirname, '..', '..', '..');
const parts = { view: 'report' as const, title: 'Report: a<b>.pth', script: 'window.x = 1;', style: 'body { color: red; }', nonce: 'bm9uY2U=' };

describe('the webview page', () => {
  it('carries its script and stylesheet inside, and lets nothing else run or load', () => {
    const page = webviewPage(parts);
    const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(page)?.[1];
    expect(csp?.split('; ')).toEqual(["default-src 'none'", 'img-src data:', "style-src 'nonce-bm9uY2U='", "script-src 'nonce-bm9uY2U='"]);
    expect(page).toContain('<script nonce="bm9uY2U=">\nwindow.x = 1;\n</script>');
    expect(page).toContain('<style nonce="bm9uY2U=">\nbody { color: red; }\n</style>');
    // Nothing to fetch: no src or href anywhere.
    expect(page).not.toMatch(/\s(src|href)=/);
    expect(page).toContain('<body data-view="report">');
    expect(page).toContain('<title>Report: a&#60;b&#62;.pth</title>');
  });

  it('refuses text that would end its element early', () => {
    expect(() => webviewPage({ ...parts, script: 'const s = "</script>";' })).toThrow(/script.*cannot be put inside the page/);
    expect(() => webviewPage({ ...parts, script: 'x = "<!--<SCRIPT>"' })).toThrow(/contains "<script"/);
    expect(() => webviewPage({ ...parts, style: 'a::after { content: "</style>" }' })).toThrow(/stylesheet cannot be put inside the page/);
  });

  it('takes the real webview bundle and stylesheet', async () => {
    // Bundled as scripts/build.mjs bundles it for dist/webview.js.
    const built = await esbuild.build({
      entryPoints: [path.join(ROOT, 'webview', 'main.ts')],
      bundle: true,
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    const script = built.outputFiles[0].text;
    expect(script.length).toBeGreaterThan(100_000);
    const style = readFileSync(path.join(ROOT, 'media', 'replens.css'), 'utf8');
    expect(webviewPage({ ...parts, script, style })).toContain(script);
  });
});
