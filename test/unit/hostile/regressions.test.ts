import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateCase, loadCorpus } from '../../../scripts/fuzz/mutators';
import { runPipeline } from '../../../scripts/fuzz/pipeline';
import { FIXTURES, MARKER } from './hostileHelpers';

/*
 * Inputs the fuzzer (npm run fuzz) found crashing or hanging RepLens, and a short seeded
 * run of its mutators: each must end in a result, a ModelFormatError or a FusionError,
 * and soon. CPU time is measured, not wall-clock time, so a busy machine cannot fail it.
 */

const DIR = join(FIXTURES, 'hostile/regressions');
const files = readdirSync(DIR)
  .filter((f) => f !== 'README.md')
  .sort();

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1e6;
}

describe('fuzz regression corpus', () => {
  it('has its files, each described in hostile/regressions/README.md', () => {
    const readme = readFileSync(join(FIXTURES, 'hostile/regressions/README.md'), 'utf8');
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(readme, f).toContain(`\`${f}\``);
  });

  for (const f of files) {
    it(`${f}: a result or a clean error, within seconds`, async () => {
      const path = join(DIR, f);
      const started = process.cpuUsage();
      const o = await runPipeline(new Uint8Array(readFileSync(path)), path);
      expect(o.kind, `${o.errorClass}: ${o.message}\n${o.where}`).not.toBe('crash');
      expect(cpuSeconds(started)).toBeLessThan(5);
    }, 60_000);
  }
});

describe('fuzz mutators, a short seeded run in process', () => {
  it('300 mutated fixtures end in results and clean errors, none executing anything', async () => {
    rmSync(MARKER, { force: true });
    const corpus = loadCorpus(FIXTURES);
    const kinds = { result: 0, error: 0, crash: 0 };
    const messages = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const c = generateCase(corpus, 20_251_128, i);
      const started = process.cpuUsage();
      const o = await runPipeline(c.bytes, c.seed.path);
      expect(o.kind, `case ${i} (${c.seed.name}: ${c.ops.join(' / ')}): ${o.errorClass}: ${o.message}\n${o.where}`).not.toBe('crash');
      expect(cpuSeconds(started), `case ${i}`).toBeLessThan(5);
      kinds[o.kind]++;
      if (o.message) messages.add(o.message.replace(/\d+/g, 'N'));
    }
    // The mutations reach past the first check: many still convert, and the errors are varied.
    expect(kinds.result).toBeGreaterThan(30);
    expect(messages.size).toBeGreaterThan(50);
    expect(existsSync(MARKER)).toBe(false);
  }, 180_000);
});
