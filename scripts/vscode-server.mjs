// Starts a throw-away code-server (VS Code 1.100 in a browser) for the e2e tests
// and the demo: fresh profile, RepLens installed from the VSIX, a copy of the
// sample models as the workspace. Everything it starts dies with this process.
import { execFile, spawn } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const sampleModelsDir = join(repoRoot, 'test', 'fixtures', 'models');

// Settings that keep first-run UI (welcome page, trust prompt, tips, update and
// telemetry chatter) out of the way so tests and screenshots see the editor.
const userSettings = {
  'telemetry.telemetryLevel': 'off',
  'workbench.startupEditor': 'none',
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.colorTheme': 'Default Dark Modern',
  'security.workspace.trust.enabled': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'update.mode': 'none',
  'chat.commandCenter.enabled': false,
  'git.enabled': false,
};

/** Installs code-server on first use (scripts/install-vscode.sh) and returns its entry point and version line. */
export async function ensureCodeServer() {
  // The installer's progress goes straight to the terminal: a cold install takes a while.
  const installer = spawn('bash', [join(repoRoot, 'scripts', 'install-vscode.sh')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  installer.stdout.on('data', (d) => (stdout += d));
  const code = await new Promise((resolveCode) => installer.on('close', resolveCode));
  if (code !== 0) throw new Error(`scripts/install-vscode.sh failed (exit ${code})`);
  const entry = stdout.trim().split('\n').pop();
  const { stdout: versionOut } = await run(process.execPath, [entry, '--version']);
  return { entry, version: versionOut.trim().split('\n')[0] };
}

function listen(port) {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      const { port: bound } = srv.address();
      srv.close(() => resolvePort(bound));
    });
  });
}

/** The preferred port if it is free, otherwise any free port. */
export async function pickPort(preferred = 0) {
  if (preferred) {
    try {
      return await listen(preferred);
    } catch (err) {
      if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') throw err;
    }
  }
  return listen(0);
}

// Servers still running, so an exit or a signal can take them down synchronously.
const live = new Set();
let handlersInstalled = false;

function killGroup(child, signal) {
  try {
    // Negative pid: the whole process group, i.e. code-server and the extension
    // host, pty host and watcher it forks.
    process.kill(-child.pid, signal);
  } catch (err) {
    if (err.code !== 'ESRCH') throw err;
  }
}

function installExitHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const s of live) s.stopNow();
  });
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ]) {
    process.on(signal, () => {
      for (const s of live) s.stopNow();
      process.exit(code);
    });
  }
}

async function waitUntilUp(url, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`code-server exited early (${child.exitCode ?? child.signalCode})`);
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`code-server did not answer on ${url} within ${timeoutMs / 1000}s`);
}

/**
 * Starts code-server with a fresh profile.
 *
 * @param {object} opts
 * @param {string} [opts.vsix]        VSIX to install into the fresh extensions dir
 * @param {string} [opts.samplesDir]  folder whose files are copied into the workspace
 * @param {number} [opts.port]        preferred port (a free one is used if it is taken)
 * @param {number} [opts.timeoutMs]   how long to wait for the server to answer
 */
export async function startCodeServer(opts = {}) {
  const { entry, version } = await ensureCodeServer();
  const root = mkdtempSync(join(tmpdir(), 'replens-vscode-'));
  const extensionsDir = join(root, 'extensions');
  const userDataDir = join(root, 'user-data');
  const workspace = join(root, 'replens-samples');
  const logFile = join(root, 'code-server.log');
  mkdirSync(join(userDataDir, 'User'), { recursive: true });
  mkdirSync(extensionsDir);
  mkdirSync(workspace);
  writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify(userSettings, null, 2));

  const samplesDir = opts.samplesDir ?? sampleModelsDir;
  if (existsSync(samplesDir)) {
    for (const name of readdirSync(samplesDir)) cpSync(join(samplesDir, name), join(workspace, name), { recursive: true });
  }

  const profileArgs = ['--extensions-dir', extensionsDir, '--user-data-dir', userDataDir];
  if (opts.vsix) {
    await run(process.execPath, [entry, ...profileArgs, '--install-extension', resolve(opts.vsix), '--force'], {
      timeout: 120_000,
    }).catch((err) => {
      rmSync(root, { recursive: true, force: true });
      throw new Error(`installing ${opts.vsix} into code-server failed:\n${err.stdout}${err.stderr || err.message}`);
    });
  }

  const port = await pickPort(opts.port ?? 0);
  const url = `http://127.0.0.1:${port}`;
  const logFd = openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [
      entry,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      ...profileArgs,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--ignore-last-opened',
      workspace,
    ],
    // Own process group so stop() reaches every child it forks.
    { detached: true, stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd); // the child holds its own copy

  let stopped = false;
  const handle = {
    url,
    port,
    version,
    root,
    workspace,
    extensionsDir,
    userDataDir,
    logFile,
    /** URL that opens the sample workspace in the browser. */
    folderUrl: `${url}/?folder=${encodeURIComponent(workspace).replace(/%2F/g, '/')}`,
    /** Synchronous teardown for exit paths that cannot wait. */
    stopNow() {
      if (stopped) return;
      stopped = true;
      live.delete(handle);
      killGroup(child, 'SIGKILL');
      rmSync(root, { recursive: true, force: true });
    },
    /** Asks code-server to quit, then forces it after a grace period, and removes the profile. */
    async stop() {
      if (stopped) return;
      const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));
      killGroup(child, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      handle.stopNow();
    },
    /** Copies the server log and VS Code's own logs (extension host, window) into dest. */
    collectLogs(dest) {
      mkdirSync(dest, { recursive: true });
      if (existsSync(logFile)) cpSync(logFile, join(dest, 'code-server.log'));
      const vscodeLogs = join(userDataDir, 'logs');
      if (existsSync(vscodeLogs)) cpSync(vscodeLogs, join(dest, 'vscode-logs'), { recursive: true });
    },
  };
  live.add(handle);
  installExitHandlers();

  try {
    await waitUntilUp(url, child, opts.timeoutMs ?? 60_000);
  } catch (err) {
    // The profile (and the log with it) is about to go: keep the log's end in the error.
    const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n') : '';
    handle.stopNow();
    throw new Error(`${err.message}\n--- code-server log (end) ---\n${tail}`, { cause: err });
  }
  return handle;
}
