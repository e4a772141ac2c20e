// Try RepLens in a real VS Code without installing anything by hand: builds and
// packages the extension, starts code-server with it and a copy of the sample
// models, and prints the address to open. Ctrl-C stops it and removes the copy.
//
//   npm run demo                 port from REPLENS_PORT, default 8080 (another free one if taken)
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, startCodeServer } from './vscode-server.mjs';

const port = Number(process.env.REPLENS_PORT || 8080);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`REPLENS_PORT must be a port number, got "${process.env.REPLENS_PORT}"`);
  process.exit(2);
}

const { status } = spawnSync('npm', ['run', 'package'], { cwd: repoRoot, stdio: 'inherit' });
if (status !== 0) process.exit(status ?? 1);

console.log('\nstarting code-server (the first run installs it, about a minute)…');
const server = await startCodeServer({ vsix: join(repoRoot, 'replens-linux-x64.vsix'), port });
if (server.port !== port) console.log(`port ${port} is busy; using ${server.port}`);
console.log(`
RepLens demo: ${server.version}
  open      ${server.folderUrl}
  models    ${server.workspace} (a copy; changes are discarded)
  log       ${server.logFile}
Click any .pth, .onnx or .safetensors file in the Explorer. Ctrl-C to stop.`);
// The server module stops code-server on SIGINT/SIGTERM; until then stay alive.
setInterval(() => {}, 1 << 30);
