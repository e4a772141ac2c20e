// Benchmarks the CLI on a RepVGG-B3-sized checkpoint (about 490 MB) against PyTorch doing the same job,
// and against `cp` + fsync of the same file (the floor for reading and writing those bytes).
// Every measurement is its own child process: wall time is taken here around the spawn, CPU time comes
// from GNU time (less disturbed than wall time when other work shares the cores). Peak memory is the
// largest sum of RSS over the command's whole process tree, sampled from /proc every 10 ms (the parity
// check runs ONNX Runtime in a second process; GNU time's %M would give only the larger of the two).
// Each figure is the median of --reps runs; replens and torch runs alternate so background load falls
// on both alike. Prints a table and writes bench-results/bench.json.
//
//   npm run bench [-- --reps N]
//
// The checkpoints are made once with torch (seeded) and cached in bench-results/checkpoints; delete
// that folder to make them again.
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(root, 'bench-results');
const checkpointDir = join(resultsDir, 'checkpoints');
const outDir = join(resultsDir, 'out');
const PYTHON = '/usr/bin/python3'; // Debian's, the one with python3-torch
const TORCH_BENCH = join(root, 'scripts', 'bench', 'torch_bench.py');
const CLI = join(root, 'dist', 'cli.js');
const TIME = '/usr/bin/time';
const MiB = 1024 * 1024;

const repsArg = process.argv.indexOf('--reps');
const reps = repsArg < 0 ? 3 : Number(process.argv[repsArg + 1]);
if (!Number.isInteger(reps) || reps < 1) fail('--reps takes a positive whole number');

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(1);
}

const progress = (message) => process.stderr.write(`· ${message}\n`);

function buildCli() {
  const r = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8' });
  if (r.status === 0) return;
  // Other work may leave the sources briefly unbuildable; an existing bundle is still worth measuring.
  if (!existsSync(CLI)) fail(`npm run build failed:\n${r.stdout}${r.stderr}`);
  progress('npm run build failed; measuring the existing dist/cli.js');
}

function ensureGnuTime() {
  const works = () => spawnSync(TIME, ['-f', '%M', 'true']).status === 0;
  if (works()) return;
  if (process.getuid?.() === 0) {
    progress('installing GNU time (Debian package "time")');
    spawnSync('sh', ['-c', 'apt-get update -q && apt-get install -y -q time'], { stdio: 'ignore' });
  }
  if (!works()) fail(`${TIME} is missing: install the Debian package "time" (apt-get install time)`);
}

const scratch = mkdtempSync(join(os.tmpdir(), 'replens-bench-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

/** Pids of `pid` and all its descendants, from /proc. */
function processTree(pid) {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${pids[i]}/task`)) {
        pids.push(...readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
      }
    } catch {
      // The process ended while being looked at.
    }
  }
  return pids;
}

/** Resident memory of the process tree under `pid`, in KiB (GNU time's own few hundred KiB included). */
function treeRssKiB(pid) {
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // Gone.
    }
  }
  return kib;
}

/** One child process under GNU time, its tree's memory sampled while it runs. A non-zero exit throws unless anyStatus is set. */
async function run(argv, { anyStatus = false } = {}) {
  const rssFile = join(scratch, 'rss');
  const start = process.hrtime.bigint();
  const child = spawn(TIME, ['-f', '%U %S', '-o', rssFile, ...argv], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  let peakKiB = 0;
  const sampler = setInterval(() => (peakKiB = Math.max(peakKiB, treeRssKiB(child.pid))), 10);
  const status = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  clearInterval(sampler);
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  if (status !== 0 && !anyStatus) {
    throw new Error(`${argv.slice(1).join(' ')} exited with ${status}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
  }
  // On a non-zero exit GNU time writes a "Command exited ..." line before the figures.
  const [userS, sysS] = readFileSync(rssFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
  return { wallS, cpuS: userS + sysS, peakRssMiB: peakKiB / 1024, status, stdout, stderr };
}

/** Runs each named command `reps` times, round-robin; a command's `before` runs ahead of each of its runs, untimed. */
async function series(label, commands) {
  const runs = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
  for (let i = 1; i <= reps; i++) {
    for (const [name, { argv, before, ...opts }] of Object.entries(commands)) {
      progress(`${label}: ${name} ${i}/${reps}`);
      before?.();
      runs[name].push(await run(argv, opts));
    }
  }
  return runs;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Medians plus every run, for bench.json. */
const stats = (runs) => ({
  wallS: round(median(runs.map((r) => r.wallS)), 4),
  cpuS: round(median(runs.map((r) => r.cpuS)), 2),
  peakRssMiB: round(median(runs.map((r) => r.peakRssMiB)), 1),
  runs: runs.map(({ wallS, cpuS, peakRssMiB }) => ({ wallS: round(wallS, 4), cpuS: round(cpuS, 2), peakRssMiB: round(peakRssMiB, 1) })),
});

const round = (x, digits) => Number(x.toFixed(digits));
const node = (...args) => ({ argv: [process.execPath, CLI, ...args] });
const torch = (...args) => ({ argv: [PYTHON, TORCH_BENCH, ...args] });

function python(...args) {
  const r = spawnSync(PYTHON, [TORCH_BENCH, ...args], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`torch_bench.py ${args[0]} failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}

function torchVersion() {
  return spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim() || null;
}

async function warmPageCache(path) {
  // The first read of a freshly evicted file would charge disk time to whichever command runs first.
  for await (const _ of createReadStream(path, { highWaterMark: 8 * MiB }));
}

// ---------------------------------------------------------------------------------------------

progress('npm run build');
buildCli();
ensureGnuTime();
mkdirSync(checkpointDir, { recursive: true });

const checkpoints = { B3: join(checkpointDir, 'repvgg_b3_train.pth'), A0: join(checkpointDir, 'repvgg_a0_train.pth') };
for (const [arch, path] of Object.entries(checkpoints)) {
  if (existsSync(path)) continue;
  progress(`making the RepVGG-${arch} checkpoint with torch (once; cached in ${checkpointDir})`);
  try {
    python('make', arch, path);
  } catch (error) {
    fail(error.message);
  }
}
for (const path of Object.values(checkpoints)) await warmPageCache(path);
const b3Bytes = statSync(checkpoints.B3).size;
const b3MiB = b3Bytes / MiB;

const loadAtStart = os.loadavg();
const report = {
  date: new Date().toISOString(),
  machine: {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    kernel: `${os.type()} ${os.release()}`,
    loadAverage1mStart: round(loadAtStart[0], 2),
  },
  versions: { node: process.version, torch: torchVersion(), replens: JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version },
  method: {
    reps,
    statistic: 'median',
    wallTime: 'process.hrtime around each child process (includes interpreter start-up)',
    peakRss: "largest sum of VmRSS over the command's process tree, sampled from /proc every 10 ms",
    cpuTime: 'GNU time %U + %S: user + system seconds of the child',
    order: 'replens and torch runs alternate; page cache warmed before the first run',
  },
  files: Object.fromEntries(Object.entries(checkpoints).map(([arch, path]) => [arch, { path, bytes: statSync(path).size }])),
  results: {},
};

/** Table rows: [what, replens, torch, comparison, goal, ✓/✗ or '']. */
const rows = [];
const mark = (ok) => (ok ? '✓' : '✗');
const seconds = (s) => `${s.toFixed(s < 10 ? 3 : 1)} s`;
const mib = (m) => `${m.toFixed(0)} MiB`;
/** torch ÷ replens, worded the way round that reads as a number ≥ 1. */
const versus = (ratio, better, worse) => (ratio >= 1 ? `${ratio.toFixed(1)}× ${better}` : `${(1 / ratio).toFixed(1)}× ${worse}`);

/** One benchmark; a failure is recorded and shown, and the others still run. */
async function section(key, what, body) {
  try {
    report.results[key] = await body();
  } catch (error) {
    report.results[key] = { error: error.message };
    rows.push([what, 'error', '', '', '', '✗']);
    progress(`${what}: ${error.message}`);
  }
}

await section('tensors', 'tensors B3', async () => {
  const runs = await series('tensors B3', { replens: node('tensors', checkpoints.B3, '--json'), torch: torch('load', checkpoints.B3) });
  const replensCount = JSON.parse(runs.replens[0].stdout).tensors.length;
  const torchOut = JSON.parse(runs.torch[0].stdout);
  const r = stats(runs.replens);
  const t = stats(runs.torch);
  const goals = {
    wallS: { max: 0.3, met: r.wallS <= 0.3 },
    peakRssMiB: { max: round(b3MiB / 4, 1), met: r.peakRssMiB <= b3MiB / 4 },
    sameTensorCount: { met: replensCount === torchOut.tensors },
  };
  rows.push([
    'tensors B3 --json: wall',
    seconds(r.wallS),
    `${seconds(t.wallS)} (torch.load)`,
    versus(t.wallS / r.wallS, 'faster', 'slower'),
    '≤ 0.3 s',
    mark(goals.wallS.met),
  ]);
  rows.push([
    'tensors B3 --json: peak RSS',
    mib(r.peakRssMiB),
    mib(t.peakRssMiB),
    `file ${mib(b3MiB)}`,
    `≤ ¼ file (${mib(b3MiB / 4)})`,
    mark(goals.peakRssMiB.met),
  ]);
  rows.push(['tensors B3: tensor count', String(replensCount), String(torchOut.tensors), '', 'same', mark(goals.sameTensorCount.met)]);
  return { replens: r, torch: t, tensorCount: { replens: replensCount, torch: torchOut.tensors }, goals };
});

await section('inspect', 'inspect B3', async () => {
  const runs = await series('inspect B3', { replens: node('inspect', checkpoints.B3, '--json') });
  const b3Arch = JSON.parse(runs.replens[0].stdout).architecture;
  const a0Arch = JSON.parse((await run(node('inspect', checkpoints.A0, '--json').argv)).stdout).architecture;
  const r = stats(runs.replens);
  const goals = {
    wallS: { max: 0.3, met: r.wallS <= 0.3 },
    architectureB3: { expected: 'RepVGG-B3', met: b3Arch === 'RepVGG-B3' },
    architectureA0: { expected: 'RepVGG-A0', met: a0Arch === 'RepVGG-A0' },
  };
  rows.push(['inspect B3 --json: wall', seconds(r.wallS), '', '', '≤ 0.3 s', mark(goals.wallS.met)]);
  rows.push(['inspect B3: architecture', b3Arch, '', '', 'RepVGG-B3', mark(goals.architectureB3.met)]);
  rows.push(['inspect A0: architecture', a0Arch, '', '', 'RepVGG-A0', mark(goals.architectureA0.met)]);
  return { replens: r, architecture: { B3: b3Arch, A0: a0Arch }, goals };
});

await section('convert', 'convert B3', async () => {
  mkdirSync(outDir, { recursive: true });
  const ours = join(outDir, 'repvgg_b3_deploy.replens.pth');
  const theirs = join(outDir, 'repvgg_b3_deploy.torch.pth');
  const copy = join(outDir, 'repvgg_b3_copy.pth');
  // Each run writes a new file, as converting a model does. Replacing the last run's file would not be the
  // same work for all three: cp truncates it first and refills the pages just freed, replens keeps it until
  // the new file is verified, and on a VM that backs memory lazily fresh pages cost several times more.
  const fresh = (file) => () => rmSync(file, { force: true });
  try {
    const runs = await series('convert B3', {
      replens: { ...node('convert', checkpoints.B3, '-o', ours, '--json'), before: fresh(ours) },
      // The floor: read every byte of the input, write as many, and wait for the disk, as a conversion must.
      copy: { argv: ['sh', '-c', 'cp "$0" "$1" && sync "$1"', checkpoints.B3, copy], before: fresh(copy) },
      torch: { ...torch('convert', 'B3', checkpoints.B3, theirs), before: fresh(theirs) },
    });
    const r = stats(runs.replens);
    const c = stats(runs.copy);
    const t = stats(runs.torch);
    const speedup = t.wallS / r.wallS;
    const overCopy = r.wallS / c.wallS;
    // The read-back check is part of every conversion; each run's JSON says how long it took.
    const verifyShares = runs.replens.map((x) => {
      const { seconds: total, verifySeconds } = JSON.parse(x.stdout);
      return verifySeconds / total;
    });
    const verifyShare = median(verifyShares);
    const verifyS = median(runs.replens.map((x) => JSON.parse(x.stdout).verifySeconds));
    progress('convert B3: checking the output in torch');
    const check = JSON.parse(python('verify', 'B3', ours, theirs));
    const goals = {
      overCopy: { max: 2, met: overCopy <= 2 },
      speedup: { min: 10, met: speedup >= 10 },
      peakRssMiB: { max: 250, met: r.peakRssMiB <= 250 },
      verified: { met: verifyS > 0 },
      strictLoad: { met: check.strictLoad === true },
      // Float32 fusions of the same weights differ by rounding only (~1e-8 here); a wrong tensor is off by its own size.
      sameAsTorch: { maxAbs: 1e-5, met: check.maxAbsVsTorch <= 1e-5 },
    };
    rows.push([
      'convert B3: wall',
      seconds(r.wallS),
      seconds(t.wallS),
      versus(speedup, 'faster', 'slower'),
      '≥ 10× faster than torch',
      mark(goals.speedup.met),
    ]);
    rows.push([
      'convert B3: wall vs cp + fsync',
      seconds(r.wallS),
      `${seconds(c.wallS)} (cp + fsync)`,
      `${overCopy.toFixed(2)}× the copy`,
      '≤ 2× the copy',
      mark(goals.overCopy.met),
    ]);
    rows.push(['convert B3: CPU user+sys', seconds(r.cpuS), seconds(t.cpuS), versus(t.cpuS / r.cpuS, 'less', 'more'), '', '']);
    rows.push([
      'convert B3: peak RSS',
      mib(r.peakRssMiB),
      mib(t.peakRssMiB),
      `${(r.peakRssMiB / t.peakRssMiB).toFixed(2)} of torch`,
      '≤ 250 MiB',
      mark(goals.peakRssMiB.met),
    ]);
    rows.push(['convert B3: read-back check', seconds(verifyS), '', `${(100 * verifyShare).toFixed(1)} % of the conversion`, 'on', mark(goals.verified.met)]);
    rows.push([
      'convert B3: output in torch',
      'strict load ok',
      '',
      `max |Δ| ${check.maxAbsVsTorch.toExponential(1)}`,
      'load_state_dict(strict=True)',
      mark(goals.strictLoad.met),
    ]);
    rows.push(['convert B3: vs torch fusion', `max |Δ| ${check.maxAbsVsTorch.toExponential(1)}`, '', '', '≤ 1e-5', mark(goals.sameAsTorch.met)]);
    return {
      replens: r,
      copy: c,
      torch: t,
      speedup: round(speedup, 2),
      overCopy: round(overCopy, 2),
      verify: { seconds: round(verifyS, 4), shareOfConversion: round(verifyShare, 4), shares: verifyShares.map((x) => round(x, 4)) },
      blocksFused: JSON.parse(runs.replens[0].stdout).blocksFused,
      check,
      goals,
    };
  } finally {
    // Three ~440-490 MB outputs; only the figures are kept.
    rmSync(outDir, { recursive: true, force: true });
  }
});

/** `replens parity FILE --inputs 1` (224×224, no latency) against torch doing the same job: load, run, convert, run. */
async function parity(arch, goals) {
  const file = checkpoints[arch];
  const runs = await series(`parity ${arch}`, {
    replens: { ...node('parity', file, '--inputs', '1', '--shape', '1,3,224,224', '--json'), anyStatus: true },
    torch: torch('parity', arch, file),
  });
  const parsed = runs.replens.map((x) => {
    try {
      return JSON.parse(x.stdout);
    } catch {
      throw new Error(`parity printed no JSON (exit ${x.status}): ${x.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
  });
  const r = stats(runs.replens);
  const t = stats(runs.torch);
  const timeRatio = r.wallS / t.wallS;
  const memoryRatio = r.peakRssMiB / t.peakRssMiB;
  const met = {
    time: { maxRatio: goals.time, met: timeRatio <= goals.time },
    ...(goals.memory === undefined ? {} : { memory: { maxRatio: goals.memory, met: memoryRatio <= goals.memory } }),
    pass: { met: parsed.every((p) => p.pass === true) && runs.torch.every((x) => JSON.parse(x.stdout).pass === true) },
  };
  const timeGoal = goals.time === 1 ? 'no slower than torch' : `≤ ${goals.time}× torch`;
  rows.push([
    `parity ${arch} (1 input, 224²): wall`,
    seconds(r.wallS),
    seconds(t.wallS),
    versus(t.wallS / r.wallS, 'faster', 'slower'),
    timeGoal,
    mark(met.time.met),
  ]);
  rows.push([
    `parity ${arch}: peak RSS (process tree)`,
    mib(r.peakRssMiB),
    mib(t.peakRssMiB),
    `${memoryRatio.toFixed(2)} of torch`,
    goals.memory === undefined ? '' : '≤ torch',
    goals.memory === undefined ? '' : mark(met.memory.met),
  ]);
  rows.push([
    `parity ${arch}: verdict`,
    parsed[0].pass ? 'PASS' : 'FAIL',
    JSON.parse(runs.torch[0].stdout).pass ? 'pass' : 'fail',
    `output max rel ${parsed[0].outputs[0]?.maxRel?.toExponential(1)}`,
    'both pass',
    mark(met.pass.met),
  ]);
  return { replens: r, torch: t, timeRatio: round(timeRatio, 3), memoryRatio: round(memoryRatio, 3), blocks: parsed[0].blocks.length, goals: met };
}

// The model editor in a real VS Code: the e2e test that opens a B3-sized checkpoint (scripts/e2e.mjs
// packages the extension and starts code-server, installing it the first time). One run, not a median.
await section('editor', 'open B3 in the model editor', async () => {
  progress('open B3 in the model editor: the e2e test in a real VS Code (code-server)');
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'e2e.mjs'), '--grep', 'B3-sized'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`the e2e test failed: ${`${r.stdout}${r.stderr}`.trim().split('\n').slice(-4).join(' | ')}`);
  const perf = JSON.parse(readFileSync(join(root, 'test-results', 'perf.json'), 'utf8')).openB3;
  const goals = { hostReadMs: { max: 300, met: perf.hostReadMs !== null && perf.hostReadMs <= 300 } };
  rows.push([
    'open B3 in the editor: RepLens reads it',
    `${perf.hostReadMs} ms`,
    '',
    `tiny sample ${perf.tinyHostReadMs} ms`,
    '≤ 0.3 s',
    mark(goals.hostReadMs.met),
  ]);
  rows.push([
    'open B3 in the editor: click → stages shown',
    `${perf.clickToStructureMs} ms`,
    '',
    `tiny sample ${perf.tinyClickToStructureMs} ms (the workbench opening any editor)`,
    '',
    '',
  ]);
  return { ...perf, goals };
});

if (spawnSync(process.execPath, [CLI, 'parity', '--help'], { stdio: 'ignore' }).status === 0) {
  await section('parityB3', 'parity B3', () => parity('B3', { time: 1, memory: 1 }));
  await section('parityA0', 'parity A0', () => parity('A0', { time: 1.5 }));
} else {
  report.results.parity = { available: false };
  rows.push(['parity', 'not available (ONNX Runtime missing)', '', '', '', '✗']);
}

report.machine.loadAverage1mEnd = round(os.loadavg()[0], 2);
writeFileSync(join(resultsDir, 'bench.json'), `${JSON.stringify(report, null, 2)}\n`);

const header = ['', 'replens', 'torch', 'comparison', 'goal', ''];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) =>
  cells
    .map((c, i) => c.padEnd(widths[i]))
    .join('  ')
    .trimEnd();
console.log(`
RepLens ${report.versions.replens} benchmark, ${report.date}
${report.machine.cpu}, ${report.machine.cores} cores, ${report.machine.memoryGiB} GiB; node ${process.version}, torch ${report.versions.torch ?? 'not found'}
RepVGG-B3 train checkpoint: ${(b3Bytes / 1e6).toFixed(0)} MB; median of ${reps} run${reps === 1 ? '' : 's'}; load average ${report.machine.loadAverage1mStart} → ${report.machine.loadAverage1mEnd}
`);
console.log(line(header));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const r of rows) console.log(line(r));
console.log(`\nwritten: ${join(resultsDir, 'bench.json')}`);
