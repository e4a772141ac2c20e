// ESLint: typescript-eslint's recommended rules, the promise rules an extension host needs (a
// dropped promise is an unhandled rejection or a lost error), and the layers of ARCHITECTURE.md.
// Formatting is Prettier's (npm run format), so no stylistic rule is on here.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import { ALLOWED, FOLDERS } from './scripts/layers.mjs';

const layers = /** @type {(keyof typeof FOLDERS)[]} */ (Object.keys(FOLDERS));
const packages = [...new Set(layers.flatMap((l) => ALLOWED[l].packages))];

/** For each layer, the imports it may not make: the other layers' folders, node where it has none, other layers' packages. */
const layerRules = layers.map((layer) => {
  const rule = ALLOWED[layer];
  const forbidden = layers.filter((l) => !rule.layers.includes(l));
  return {
    files: [`${FOLDERS[layer]}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: packages
            .filter((p) => !rule.packages.includes(p))
            .map((name) => ({ name, message: `${FOLDERS[layer]} may not import ${name} (ARCHITECTURE.md, Folders)` })),
          patterns: [
            ...forbidden.map((l) => ({
              group: [`**/${FOLDERS[l].split('/').at(-1)}/**`],
              message: `${FOLDERS[layer]} may not import ${FOLDERS[l]} (ARCHITECTURE.md, Folders)`,
            })),
            ...(rule.node ? [] : [{ group: ['node:*'], message: `${FOLDERS[layer]} runs without node (ARCHITECTURE.md, Folders)` }]),
          ],
        },
      ],
    },
  };
});

export default tseslint.config(
  { ignores: ['dist/**', 'out/**', 'node_modules/**', 'bench-results/**', 'test-results/**', '.vscode-test/**', 'test/fixtures/peers/src/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  { rules: { '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }] } },
  // Scripts run in node; the e2e tests and the webview preview also hand functions to the browser page.
  { files: ['**/*.mjs'], languageOptions: { globals: globals.node } },
  { files: ['test/e2e/**/*.mjs', 'test/unit/webview/*.mjs'], languageOptions: { globals: { ...globals.node, ...globals.browser } } },
  ...layerRules,
  prettier,
);
