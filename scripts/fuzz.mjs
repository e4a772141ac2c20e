// Seeded, time-bounded fuzzing of everything RepLens does with a file it opens: read, structure,
// tensors, deploy conversion. Cases are mutations of the fixtures (scripts/fuzz/mutators.ts), run in
// worker processes that this script watches for hangs and memory. See `node scripts/fuzz.mjs --help`.
import * as esbuild from 'esbuild';
import { execFileSync, fork } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HELP = `usage: npm run fuzz -- [options]

  --seed N        run seed (default 1); case i of seed N is always the same input
  --cases N       stop after N cases (default 10000)
  --seconds N     stop starting cases after N seconds (default 600)
  --jobs N        worker processes (default: number of CPUs)
  --timeout MS    a case using more CPU time than this is a hang (default 5000); a case also
                  counts as hung after 6x this in wall-clock time (so a stalled promise is caught)
  --memory MB     a worker whose resident memory passes this is a finding (default 1024)
  --save DIR      where crashing and hanging inputs go (default test/fixtures/hostile/regressions)
  --out FILE      summary JSON (default bench-results/fuzz.json)
  --replay I      run case I only, print what it is and how it ends; --write FILE saves its bytes
`;

function parseArgs(argv) {
  const o = {
    seed: 1,
    cases: 10_000,
    seconds: 600,
    jobs: os.availableParallelism(),
    timeout: 5000,
    memory: 1024,
    save: 'test/fixtures/hostile/regressions',
    out: 'bench-results/fuzz.json',
    replay: undefined,
    write: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    }
    const key = a.replace(/^--/, '');
    if (!a.startsWith('--') || !(key in o) || i + 1 >= argv.length) {
      process.stderr.write(`unknown or incomplete option ${a}\n${HELP}`);
      process.exit(2);
    }
    const v = argv[++i];
    if (typeof o[key] === 'number' || key === 'replay') {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) {
        process.stderr.write(`${a} needs a non-negative integer, got ${v}\n`);
        process.exit(2);
      }
      o[key] = n;
    } else {
      o[key] = v;
    }
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.join(root, 'test/fixtures');
const MARKER = '/tmp/replens-pwned-marker';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'replens-fuzz-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
await esbuild.build({
  entryPoints: { worker: path.join(root, 'scripts/fuzz/worker.ts') },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outdir: tmp,
  logLevel: 'warning',
});
const workerFile = path.join(tmp, 'worker.js');

/** Resident set size of a process in MB, from /proc (Linux); undefined elsewhere. */
function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU time (user + system) a process has used, in ms, from /proc (Linux); undefined elsewhere.
 * Other work on the machine stretches wall-clock time but not this, so hangs are judged on it.
 */
function cpuMs(pid) {
  try {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** One worker process; respawned after it is killed or dies. */
class Slot {
  peakRss = 0;
  child = undefined;
  pending = undefined;

  async ensure() {
    if (this.child) return this.ready;
    const child = fork(workerFile, [fixtures, String(opts.seed)], {
      execArgv: [`--max-old-space-size=${opts.memory}`],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child = child;
    this.stderr = '';
    child.stderr.on('data', (d) => (this.stderr = (this.stderr + d).slice(-4000)));
    this.ready = new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', () => reject(new Error(`fuzz worker exited before it was ready:\n${this.stderr}`)));
    });
    child.on('message', (m) => {
      if (m.type === 'started' && this.pending) {
        // The case's budget starts now: generating it does not count.
        Object.assign(this.pending, { started: m, sent: Date.now(), cpu: cpuMs(child.pid) });
      } else if ((m.type === 'done' || m.type === 'generated' || m.type === 'generatorError') && this.pending) this.settle(m);
    });
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.settle({ type: 'exit', code, signal, stderr: this.stderr });
    });
    return this.ready;
  }

  /** Sends one request; resolves with the reply, or with timeout / memory / exit. */
  async request(msg, timeout) {
    await this.ensure();
    return new Promise((resolve) => {
      this.pending = { resolve, timeout, sent: Date.now(), cpu: cpuMs(this.child.pid), started: undefined };
      this.child.send(msg);
    });
  }

  settle(result) {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    p.resolve({ ...result, started: p.started });
  }

  kill(result) {
    const child = this.child;
    this.child = undefined;
    child?.kill('SIGKILL');
    this.settle(result);
  }

  /** Called by the watchdog. */
  check(now) {
    if (!this.pending || !this.child) return;
    const rss = rssMb(this.child.pid);
    if (rss !== undefined) this.peakRss = Math.max(this.peakRss, rss);
    const cpu = cpuMs(this.child.pid);
    const { timeout, sent } = this.pending;
    const cpuUsed = cpu !== undefined && this.pending.cpu !== undefined ? cpu - this.pending.cpu : undefined;
    if (rss !== undefined && rss > opts.memory) this.kill({ type: 'memory', rss });
    else if (cpuUsed !== undefined ? cpuUsed > timeout || now - sent > 6 * timeout : now - sent > timeout) {
      this.kill({ type: 'timeout', cpuMs: cpuUsed, wallMs: now - sent });
    }
  }

  stop() {
    this.child?.kill('SIGKILL');
    this.child = undefined;
  }
}

const slots = Array.from({ length: Math.max(1, opts.jobs) }, () => new Slot());
const watchdog = setInterval(() => {
  const now = Date.now();
  for (const s of slots) s.check(now);
}, 50);

if (opts.replay !== undefined) {
  const g = await slots[0].request({ type: 'generate', index: opts.replay }, opts.timeout * 6);
  if (opts.write) writeFileSync(opts.write, g.bytes);
  const r = await slots[0].request({ type: 'run', index: opts.replay }, opts.timeout);
  const { type, outcome, cpuMs: cpu, ms, rss, code, signal, stderr } = r;
  process.stdout.write(
    `${JSON.stringify({ index: opts.replay, fixture: g.fixture, ops: g.ops, bytes: g.bytes?.length, type, outcome, cpuMs: cpu, ms, rss, code, signal, stderr }, null, 2)}\n`,
  );
  clearInterval(watchdog);
  for (const s of slots) s.stop();
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// The run

const stats = {
  cases: 0,
  results: 0,
  cleanErrors: 0,
  crashes: 0,
  hangs: 0,
  memory: 0,
  processExits: 0,
  pwned: 0,
  generatorErrors: 0,
  fusedBlocks: 0,
  casesConverted: 0,
};
const byStage = {};
const byFixture = {};
const byFamily = {};
const messages = new Map();
const findings = [];
const slowest = [];
const durations = [];

/** 'zip.content:pickle.memo:get-unset@3' -> 'zip.content+pickle.memo' */
function family(label) {
  return label
    .split(':')
    .filter((s) => /^[a-z]+\.[a-zA-Z]+$/.test(s))
    .join('+');
}

function tally(table, key, field, ms) {
  table[key] ??= { cases: 0, results: 0, cleanErrors: 0, findings: 0, ms: 0 };
  table[key].cases++;
  table[key][field]++;
  table[key].ms += Math.round(ms);
}

function record(fixture, ops, field, ms = 0) {
  tally(byFixture, fixture, field, ms);
  for (const f of new Set(ops.map(family))) tally(byFamily, f, field, ms);
}

function addFinding(kind, index, info) {
  findings.push({ kind, index, ...info });
  stats[{ crash: 'crashes', hang: 'hangs', memory: 'memory', exit: 'processExits', pwned: 'pwned', generator: 'generatorErrors' }[kind]]++;
}

const started = Date.now();
let next = 0;

function nextJob() {
  if (next >= opts.cases || Date.now() - started > opts.seconds * 1000) return undefined;
  return next++;
}

let lastReport = Date.now();
function progress(force = false) {
  if (!force && Date.now() - lastReport < 5000) return;
  lastReport = Date.now();
  const s = (Date.now() - started) / 1000;
  process.stdout.write(
    `  ${stats.cases} cases in ${s.toFixed(0)} s (${(stats.cases / s).toFixed(0)}/s): ${stats.results} results, ` +
      `${stats.cleanErrors} clean errors, ${findings.length} findings\n`,
  );
}

async function runSlot(slot) {
  for (let index = nextJob(); index !== undefined; index = nextJob()) {
    const r = await slot.request({ type: 'run', index }, opts.timeout);
    stats.cases++;
    if (r.type === 'generatorError' || (r.type !== 'done' && !r.started)) {
      // Failed or killed while still making the case: the fuzzer's own fault, not RepLens's.
      addFinding('generator', index, { message: r.message ?? `${r.type} while generating case ${index}` });
      continue;
    }
    const { fixture, ops } = r.type === 'done' ? r : r.started;
    if (r.type === 'done') {
      durations.push(r.cpuMs);
      if (r.cpuMs > opts.timeout / 5) slowest.push({ index, fixture, ops, cpuMs: Math.round(r.cpuMs), wallMs: Math.round(r.ms) });
      const o = r.outcome;
      if (r.pwned) {
        addFinding('pwned', index, { fixture, ops, outcome: o, signature: `pwned@${fixture}:${ops.map(family).join(',')}` });
        // Removed so that the next case that runs a payload is caught too.
        rmSync(MARKER, { force: true });
      }
      if (o.kind === 'result') {
        stats.results++;
        stats.fusedBlocks += o.fused;
        if (o.fused > 0) stats.casesConverted++;
        record(fixture, ops, 'results', r.ms);
      } else if (o.kind === 'error') {
        stats.cleanErrors++;
        byStage[o.stage] = (byStage[o.stage] ?? 0) + 1;
        const key = `${o.errorClass}: ${o.message
          .replace(/\/[^\s:']+/g, '<path>')
          .replace(/\d+/g, 'N')
          .slice(0, 120)}`;
        messages.set(key, (messages.get(key) ?? 0) + 1);
        record(fixture, ops, 'cleanErrors', r.ms);
      } else {
        addFinding('crash', index, { fixture, ops, outcome: o, signature: `${o.errorClass}@${o.where?.split(' | ')[0] ?? '?'}` });
        record(fixture, ops, 'findings', r.ms);
      }
    } else {
      const kind = r.type === 'timeout' ? 'hang' : r.type === 'memory' ? 'memory' : 'exit';
      const detail =
        r.type === 'memory'
          ? { rssMb: Math.round(r.rss) }
          : r.type === 'exit'
            ? { code: r.code, signal: r.signal, stderr: r.stderr }
            : { cpuMs: r.cpuMs === undefined ? undefined : Math.round(r.cpuMs), wallMs: r.wallMs };
      addFinding(kind, index, { fixture, ops, ...detail, signature: `${kind}@${fixture}:${ops.map(family).join(',')}` });
      record(fixture, ops, 'findings');
    }
    progress();
  }
}

process.stdout.write(
  `fuzzing: seed ${opts.seed}, up to ${opts.cases} cases or ${opts.seconds} s, ${slots.length} workers, ` +
    `timeout ${opts.timeout} ms, memory ${opts.memory} MB\n`,
);
await Promise.all(slots.map(runSlot));
const seconds = (Date.now() - started) / 1000;
progress(true);
if (existsSync(MARKER)) addFinding('pwned', -1, { message: `${MARKER} exists after the run` });

// ---------------------------------------------------------------------------------------------
// Saving findings: the first input of each signature, reduced to the mutations it needs.

const saveDir = path.resolve(root, opts.save);
const saved = new Map();
const safe = (s) => s.replace(/[^A-Za-z0-9_.+-]+/g, '_').slice(0, 60);
for (const f of findings) {
  if (!f.signature || saved.has(f.signature) || f.kind === 'generator') continue;
  const slot = slots[0];
  const g =
    f.kind === 'crash'
      ? await slot.request({ type: 'minimise', index: f.index }, opts.timeout * 8)
      : await slot.request({ type: 'generate', index: f.index }, opts.timeout * 6);
  if (g.type !== 'generated') continue;
  const stem = path.basename(f.fixture).replace(/\.(pth\.tar|pth|pt|onnx|safetensors)$/, '');
  const ext = path.basename(f.fixture).slice(stem.length);
  const what = f.kind === 'crash' ? `${f.outcome.errorClass}-${f.outcome.stage}` : f.kind;
  let name = `${safe(what)}-${safe(stem)}-${safe(g.ops.map(family).join('+')) || 'unmutated'}`;
  for (let n = 2; existsSync(path.join(saveDir, `${name}${ext}`)); n++) name = `${name.replace(/-\d+$/, '')}-${n}`;
  mkdirSync(saveDir, { recursive: true });
  writeFileSync(path.join(saveDir, `${name}${ext}`), g.bytes);
  saved.set(f.signature, path.relative(root, path.join(saveDir, `${name}${ext}`)));
  f.minimisedOps = g.ops;
}
clearInterval(watchdog);
for (const s of slots) s.stop();

// ---------------------------------------------------------------------------------------------
// Summary

durations.sort((a, b) => a - b);
const quantile = (q) => (durations.length ? Math.round(durations[Math.min(durations.length - 1, Math.floor(q * durations.length))] * 10) / 10 : 0);
const summary = {
  options: { seed: opts.seed, cases: opts.cases, seconds: opts.seconds, jobs: slots.length, timeoutMs: opts.timeout, memoryMb: opts.memory },
  node: process.version,
  seconds: Math.round(seconds * 10) / 10,
  casesPerSecond: Math.round(stats.cases / seconds),
  ...stats,
  caseCpuMs: { p50: quantile(0.5), p99: quantile(0.99), max: quantile(1) },
  peakWorkerRssMb: Math.round(Math.max(...slots.map((s) => s.peakRss))),
  cleanErrorsByStage: byStage,
  topCleanErrors: Object.fromEntries([...messages].sort((a, b) => b[1] - a[1]).slice(0, 40)),
  distinctCleanErrors: messages.size,
  byFixture,
  byMutation: byFamily,
  findings: findings.map((f) => ({
    ...f,
    saved: f.signature ? saved.get(f.signature) : undefined,
    replay: `npm run fuzz -- --seed ${opts.seed} --replay ${f.index}`,
  })),
  slowCases: slowest.sort((a, b) => b.cpuMs - a.cpuMs).slice(0, 30),
};
const outFile = path.resolve(root, opts.out);
mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(outFile, `${JSON.stringify(summary, null, 2)}\n`);

process.stdout.write(
  `\n${stats.cases} cases in ${summary.seconds} s: ${stats.results} results (${stats.casesConverted} converted), ` +
    `${stats.cleanErrors} clean errors, ${stats.crashes} crashes, ${stats.hangs} hangs, ${stats.memory} over memory, ` +
    `${stats.processExits} worker deaths, ${stats.pwned} executed payloads; ${slowest.length} cases over ${opts.timeout / 5} ms CPU\n`,
);
const bySig = new Map();
for (const f of findings) bySig.set(f.signature ?? f.kind, [...(bySig.get(f.signature ?? f.kind) ?? []), f]);
for (const [sig, list] of bySig) {
  const f = list[0];
  process.stdout.write(
    `  ${list.length}× ${sig}\n    ${f.outcome?.message ?? f.message ?? ''}\n    e.g. case ${f.index}: ${f.fixture} ${JSON.stringify(f.ops)}` +
      `${saved.get(sig) ? `\n    saved ${saved.get(sig)}` : ''}\n`,
  );
}
process.stdout.write(`summary: ${path.relative(root, outFile)}\n`);
process.exit(findings.length > 0 ? 1 : 0);
