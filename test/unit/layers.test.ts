import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALLOWED, FOLDERS } from '../../scripts/layers.mjs';

/**
 * The layers of ARCHITECTURE.md (scripts/layers.mjs), as a rule on every import, resolved: each
 * layer's own tsconfig keeps the DOM out of the host and node out of the webview, and this keeps
 * the layers apart (a package such as 'vscode' resolves wherever its types are installed, so the
 * compiler alone cannot). ESLint checks the same table as you type, by import patterns.
 */
const ROOT = path.join(__dirname, '..', '..');

type Layer = keyof typeof FOLDERS;

function filesUnder(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));
}

function layerOf(file: string): Layer | undefined {
  return (Object.keys(FOLDERS) as Layer[]).find((l) => file === FOLDERS[l] || file.startsWith(`${FOLDERS[l]}/`));
}

/** The module specifiers a file imports (static imports and exports, and dynamic import() of a literal). */
function specifiers(source: string): string[] {
  return [...source.matchAll(/^\s*(?:import|export)\s[^;]*?\bfrom\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)|^\s*import\s+'([^']+)'/gm)].map(
    (m) => m[1] ?? m[2] ?? m[3],
  );
}

/** Why `spec`, imported by `file` of `layer`, breaks the rule; undefined when it does not. */
function violation(file: string, layer: Layer, spec: string): string | undefined {
  const rule = ALLOWED[layer];
  if (spec.startsWith('.')) {
    const target = path.relative(ROOT, path.resolve(ROOT, path.dirname(file), spec));
    if (target === 'package.json' && layer === 'cli') return undefined;
    const to = layerOf(target);
    return to && rule.layers.includes(to) ? undefined : `${layer} imports ${to ?? target}`;
  }
  if (spec.startsWith('node:')) return rule.node ? undefined : `${layer} imports node's ${spec}`;
  return rule.packages.includes(spec) ? undefined : `${layer} imports the package ${spec}`;
}

describe('the layers', () => {
  const files = (Object.keys(FOLDERS) as Layer[]).flatMap((l) => filesUnder(FOLDERS[l]).map((file) => ({ file, layer: layerOf(file)! })));

  it('finds the files of every layer', () => {
    for (const l of Object.keys(FOLDERS) as Layer[])
      expect(
        files.some((f) => f.layer === l),
        l,
      ).toBe(true);
  });

  it('every import stays within what its layer may use', () => {
    const broken = files.flatMap(({ file, layer }) =>
      specifiers(readFileSync(path.join(ROOT, file), 'utf8')).flatMap((spec) => {
        const why = violation(file, layer, spec);
        return why ? [`${file}: '${spec}' (${why})`] : [];
      }),
    );
    expect(broken).toEqual([]);
  });

  it('the rule catches what it is for', () => {
    expect(violation('src/core/x.ts', 'core', 'vscode')).toMatch(/package vscode/);
    expect(violation('src/core/x.ts', 'core', '../extension/log')).toMatch(/core imports extension/);
    expect(violation('webview/x.ts', 'webview', '../src/core/report/markdown')).toMatch(/webview imports core/);
    expect(violation('webview/x.ts', 'webview', 'node:fs')).toMatch(/node's node:fs/);
    expect(violation('src/shared/x.ts', 'shared', '../core/text')).toMatch(/shared imports core/);
    expect(violation('webview/x.ts', 'webview', '../src/shared/protocol')).toBeUndefined();
    expect(specifiers("import type { A } from './a';\nexport { b } from '../b';\nconst c = await import('./c');")).toEqual(['./a', '../b', './c']);
  });
});
