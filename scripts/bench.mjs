// Benchmarks the CLI on a RepVGG-B3-sized checkpoint (about 490 MB) against PyTorch doing the same job.
// Every measurement is its own child process: wall time is taken here around the spawn, peak RSS and
// CPU time come from GNU time (%M is the kernel's ru_maxrss for the child, so no peak is missed between
// polls of /proc; CPU time is less disturbed than wall time when other work shares the cores).
// Each figure is the median of --reps runs; replens and torch runs alternate so background load falls
// on both alike. Prints a table and writes bench-results/bench.json.
//
//   npm run bench [-- --reps N]
//
// The checkpoints are made once with torch (seeded) and cached in bench-results/checkpoints; delete
// that folder to make them again.
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

/** One child process under GNU time. A non-zero exit throws unless anyStatus is set. */
function run(argv, { anyStatus = false } = {}) {
  const rssFile = join(scratch, 'rss');
  const start = process.hrtime.bigint();
  const r = spawnSync(TIME, ['-f', '%M %U %S', '-o', rssFile, ...argv], { cwd: root, encoding: 'utf8', maxBuffer: 256 * MiB });
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.error) throw r.error;
  if (r.status !== 0 && !anyStatus) {
    throw new Error(`${argv.slice(1).join(' ')} exited with ${r.status}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  }
  // On a non-zero exit GNU time writes a "Command exited ..." line before the figures.
  const [rssKiB, userS, sysS] = readFileSync(rssFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
  return { wallS, cpuS: userS + sysS, peakRssMiB: rssKiB / 1024, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs each named command `reps` times, round-robin. */
function series(label, commands) {
  const runs = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
  for (let i = 1; i <= reps; i++) {
    for (const [name, { argv, ...opts }] of Object.entries(commands)) {
      progress(`${label}: ${name} ${i}/${reps}`);
      runs[name].push(run(argv, opts));
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
    peakRss: `GNU time %M (${TIME}): ru_maxrss of the child`,
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
function section(key, what, body) {
  try {
    report.results[key] = body();
  } catch (error) {
    report.results[key] = { error: error.message };
    rows.push([what, 'error', '', '', '', '✗']);
    progress(`${what}: ${error.message}`);
  }
}

section('tensors', 'tensors B3', () => {
  const runs = series('tensors B3', { replens: node('tensors', checkpoints.B3, '--json'), torch: torch('load', checkpoints.B3) });
  const replensCount = JSON.parse(runs.replens[0].stdout).tensors.length;
  const torchOut = JSON.parse(runs.torch[0].stdout);
  const r = stats(runs.replens);
  const t = stats(runs.torch);
  const goals = {
    wallS: { max: 0.3, met: r.wallS <= 0.3 },
    peakRssMiB: { max: round(b3MiB / 4, 1), met: r.peakRssMiB <= b3MiB / 4 },
    sameTensorCount: { met: replensCount === torchOut.tensors },
  };
  rows.push(['tensors B3 --json: wall', seconds(r.wallS), `${seconds(t.wallS)} (torch.load)`, versus(t.wallS / r.wallS, 'faster', 'slower'), '≤ 0.3 s', mark(goals.wallS.met)]);
  rows.push(['tensors B3 --json: peak RSS', mib(r.peakRssMiB), mib(t.peakRssMiB), `file ${mib(b3MiB)}`, `≤ ¼ file (${mib(b3MiB / 4)})`, mark(goals.peakRssMiB.met)]);
  rows.push(['tensors B3: tensor count', String(replensCount), String(torchOut.tensors), '', 'same', mark(goals.sameTensorCount.met)]);
  return { replens: r, torch: t, tensorCount: { replens: replensCount, torch: torchOut.tensors }, goals };
});

section('inspect', 'inspect B3', () => {
  const runs = series('inspect B3', { replens: node('inspect', checkpoints.B3, '--json') });
  const b3Arch = JSON.parse(runs.replens[0].stdout).architecture;
  const a0Arch = JSON.parse(run(node('inspect', checkpoints.A0, '--json').argv).stdout).architecture;
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

section('convert', 'convert B3', () => {
  mkdirSync(outDir, { recursive: true });
  const ours = join(outDir, 'repvgg_b3_deploy.replens.pth');
  const theirs = join(outDir, 'repvgg_b3_deploy.torch.pth');
  try {
    const runs = series('convert B3', {
      replens: node('convert', checkpoints.B3, '-o', ours, '--force', '--json'),
      torch: torch('convert', 'B3', checkpoints.B3, theirs),
    });
    const r = stats(runs.replens);
    const t = stats(runs.torch);
    const speedup = t.wallS / r.wallS;
    const rssRatio = r.peakRssMiB / t.peakRssMiB;
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
      speedup: { min: 8, met: speedup >= 8 },
      peakRssRatio: { max: 0.25, met: rssRatio <= 0.25 },
      verifyShare: { max: 0.15, met: verifyShare <= 0.15 },
      strictLoad: { met: check.strictLoad === true },
      // Float32 fusions of the same weights differ by rounding only (~1e-8 here); a wrong tensor is off by its own size.
      sameAsTorch: { maxAbs: 1e-5, met: check.maxAbsVsTorch <= 1e-5 },
    };
    rows.push(['convert B3: wall', seconds(r.wallS), seconds(t.wallS), versus(speedup, 'faster', 'slower'), '≥ 8×', mark(goals.speedup.met)]);
    rows.push(['convert B3: CPU user+sys', seconds(r.cpuS), seconds(t.cpuS), versus(t.cpuS / r.cpuS, 'less', 'more'), '', '']);
    rows.push(['convert B3: peak RSS', mib(r.peakRssMiB), mib(t.peakRssMiB), `${rssRatio.toFixed(2)} of torch`, '≤ ¼ of torch', mark(goals.peakRssRatio.met)]);
    rows.push(['convert B3: read-back check', seconds(verifyS), '', `${(100 * verifyShare).toFixed(1)} % of the conversion`, '≤ 15 %', mark(goals.verifyShare.met)]);
    rows.push(['convert B3: output in torch', 'strict load ok', '', `max |Δ| ${check.maxAbsVsTorch.toExponential(1)}`, 'load_state_dict(strict=True)', mark(goals.strictLoad.met)]);
    rows.push(['convert B3: vs torch fusion', `max |Δ| ${check.maxAbsVsTorch.toExponential(1)}`, '', '', '≤ 1e-5', mark(goals.sameAsTorch.met)]);
    return {
      replens: r, torch: t, speedup: round(speedup, 2), peakRssRatio: round(rssRatio, 3),
      verify: { seconds: round(verifyS, 4), shareOfConversion: round(verifyShare, 4), shares: verifyShares.map((x) => round(x, 4)) },
      blocksFused: JSON.parse(runs.replens[0].stdout).blocksFused, check, goals,
    };
  } finally {
    // Two ~440 MB outputs; only the figures are kept.
    rmSync(outDir, { recursive: true, force: true });
  }
});

const parityAvailable = spawnSync(process.execPath, [CLI, 'parity', '--help'], { stdio: 'ignore' }).status === 0;
if (parityAvailable) {
  section('parity', 'parity A0', () => {
    const cmd = node('parity', checkpoints.A0, '--inputs', '4', '--shape', '1,3,224,224', '--json');
    // A failed comparison may exit non-zero yet still report timings in its JSON.
    const runs = series('parity A0', { replens: { ...cmd, anyStatus: true } });
    const parsed = runs.replens.map((x) => {
      try {
        return JSON.parse(x.stdout);
      } catch {
        throw new Error(`parity printed no JSON (exit ${x.status}): ${x.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      }
    });
    const latencyRatios = parsed.map((p) => p.forms?.train?.latencyMs / p.forms?.deploy?.latencyMs).filter(Number.isFinite);
    const latencyRatio = latencyRatios.length ? median(latencyRatios) : null;
    const r = stats(runs.replens);
    const ratioText = latencyRatio === null ? 'no latency in JSON' : `train/deploy latency ${latencyRatio.toFixed(2)}×`;
    rows.push(['parity A0 (4 inputs, 224²): wall', seconds(r.wallS), '', ratioText, '', '']);
    rows.push(['parity A0: peak RSS', mib(r.peakRssMiB), '', `pass: ${parsed[0].pass}`, '', '']);
    return { replens: r, trainDeployLatencyRatio: latencyRatio === null ? null : round(latencyRatio, 3), pass: parsed[0].pass ?? null, exitStatus: runs.replens[0].status };
  });
} else {
  report.results.parity = { available: false };
  rows.push(['parity A0', 'not available yet', '', '', '', '']);
}

report.machine.loadAverage1mEnd = round(os.loadavg()[0], 2);
writeFileSync(join(resultsDir, 'bench.json'), `${JSON.stringify(report, null, 2)}\n`);

const header = ['', 'replens', 'torch', 'comparison', 'goal', ''];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
console.log(`
RepLens ${report.versions.replens} benchmark, ${report.date}
${report.machine.cpu}, ${report.machine.cores} cores, ${report.machine.memoryGiB} GiB; node ${process.version}, torch ${report.versions.torch ?? 'not found'}
RepVGG-B3 train checkpoint: ${(b3Bytes / 1e6).toFixed(0)} MB; median of ${reps} run${reps === 1 ? '' : 's'}; load average ${report.machine.loadAverage1mStart} → ${report.machine.loadAverage1mEnd}
`);
console.log(line(header));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const r of rows) console.log(line(r));
console.log(`\nwritten: ${join(resultsDir, 'bench.json')}`);
