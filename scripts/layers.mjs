// The layers of ARCHITECTURE.md: where each lives and what it may import. One table for the two
// places that hold code to it: ESLint (eslint.config.mjs, as you type) and test/unit/layers.test.ts
// (every import resolved, on every `npm test`).

/** @typedef {'core' | 'cli' | 'extension' | 'shared' | 'webview'} Layer */

/** @type {Record<Layer, string>} */
export const FOLDERS = { core: 'src/core', cli: 'src/cli', extension: 'src/extension', shared: 'src/shared', webview: 'webview' };

/**
 * What each layer may import: other layers, node's own modules, and these packages.
 * @type {Record<Layer, { layers: Layer[]; node: boolean; packages: string[] }>}
 */
export const ALLOWED = {
  core: { layers: ['core', 'shared'], node: true, packages: ['onnxruntime-node', '@dagrejs/dagre', 'jpeg-js', 'pngjs'] },
  cli: { layers: ['cli', 'core', 'shared'], node: true, packages: [] },
  extension: { layers: ['extension', 'core', 'shared'], node: true, packages: ['vscode'] },
  shared: { layers: ['shared'], node: false, packages: [] },
  webview: { layers: ['webview', 'shared'], node: false, packages: ['@vscode/webview-ui-toolkit'] },
};
