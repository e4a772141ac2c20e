// Bundles what RepLens ships: the extension host code, the CLI, two workers and the webview.
import * as esbuild from 'esbuild';
import { chmod } from 'node:fs/promises';

const watch = process.argv.includes('--watch');
// Shipped bundles are minified (smaller VSIX, faster activation); names are kept so stack traces and
// error names read as in the source, and the source maps lead back to it. `npm run watch` builds plainly.
const common = { bundle: true, sourcemap: true, logLevel: 'info', target: 'es2022', minify: !watch, keepNames: true };

const builds = [
  {
    ...common,
    entryPoints: { extension: 'src/extension/extension.ts' },
    outdir: 'dist',
    platform: 'node',
    format: 'cjs',
    // vscode is provided by the host; onnxruntime-node carries native binaries and is shipped as is.
    external: ['vscode', 'onnxruntime-node'],
  },
  {
    ...common,
    entryPoints: { cli: 'src/cli/main.ts' },
    outdir: 'dist',
    platform: 'node',
    format: 'cjs',
    external: ['onnxruntime-node'],
    banner: { js: '#!/usr/bin/env node' },
  },
  {
    ...common,
    // Graph layout runs in a worker thread so that large graphs never stall the extension host.
    entryPoints: { layoutWorker: 'src/core/report/layoutWorker.ts' },
    outdir: 'dist',
    platform: 'node',
    format: 'cjs',
  },
  {
    ...common,
    // The parity check's inference process, forked by the CLI and the extension from beside their bundles.
    entryPoints: { parityWorker: 'src/core/parity/worker.ts' },
    outdir: 'dist',
    platform: 'node',
    format: 'cjs',
    external: ['onnxruntime-node'],
  },
  {
    ...common,
    entryPoints: { webview: 'webview/main.ts' },
    outdir: 'dist',
    platform: 'browser',
    format: 'iife',
  },
];

if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
  await chmod('dist/cli.js', 0o755);
}
