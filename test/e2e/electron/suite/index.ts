// Entry point VS Code loads as --extensionTestsPath: runs the compiled *.test.js
// files next to it with mocha inside the extension host.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';

/** Prefix of the one-line JSON result scripts/e2e.mjs reads back from the extension host's log. */
export const RESULT_MARKER = '[replens-suite-result]';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 60_000 });
  for (const file of readdirSync(__dirname)
    .filter((f) => f.endsWith('.test.js'))
    .sort()) {
    mocha.addFile(join(__dirname, file));
  }
  const passed: { title: string; ms: number }[] = [];
  const failed: { title: string; ms: number; message: string }[] = [];
  return new Promise((resolve, reject) => {
    mocha
      .run((failures) => {
        console.log(`${RESULT_MARKER} ${JSON.stringify({ passed, failed })}`);
        if (failures) reject(new Error(`${failures} extension host test(s) failed`));
        else resolve();
      })
      .on('pass', (t) => passed.push({ title: t.fullTitle(), ms: t.duration ?? 0 }))
      .on('fail', (t, err: Error) => failed.push({ title: t.fullTitle(), ms: t.duration ?? 0, message: err.message }));
  });
}
