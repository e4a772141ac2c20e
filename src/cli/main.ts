import { basename } from 'node:path';
import { version } from '../../package.json';
import { errorFile, ReplensError, userMessage } from '../core/formats/errors';
import { OutputError } from '../core/writers/atomicFile';
import { UsageError } from './args';
import { convertCommand, convertHelp } from './commands/convert';
import { inspectCommand, inspectHelp } from './commands/inspect';
import { parityCommand, parityHelp } from './commands/parity';
import { quantizeCheckCommand, quantizeCheckHelp } from './commands/quantizeCheck';
import { tensorsCommand, tensorsHelp } from './commands/tensors';

type Command = (argv: string[], out: (s: string) => void) => Promise<number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  inspect: { run: inspectCommand, help: inspectHelp },
  tensors: { run: tensorsCommand, help: tensorsHelp },
  convert: { run: convertCommand, help: convertHelp },
  parity: { run: parityCommand, help: parityHelp },
  'quantize-check': { run: quantizeCheckCommand, help: quantizeCheckHelp },
};

const HELP = `RepLens ${version} — inspect RepVGG-style models and convert them to deploy form

Usage: replens <command> [options]

Commands:
${Object.values(COMMANDS)
  .map((c) => `  ${c.help}`)
  .join('\n')}

Options:
  -h, --help           Show this help
  -v, --version        Print the version

Files: PyTorch checkpoints (.pth, .pt, .ckpt, .pth.tar; zip or legacy), ONNX (.onnx), safetensors.
Nothing in a file is ever executed.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const out = (s: string) => process.stdout.write(`${s}\n`);
  if (command === undefined || command === 'help' || command === '-h' || command === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (command === 'version' || command === '-v' || command === '--version') {
    out(version);
    return 0;
  }
  const entry = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!entry) {
    process.stderr.write(`replens: unknown command '${command}'. Run 'replens --help'.\n`);
    return 2;
  }
  const options = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (options.includes('-h') || options.includes('--help')) {
    process.stdout.write(`Usage: replens ${entry.help}\n`);
    return 0;
  }
  try {
    return await entry.run(rest, out);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`replens ${command}: ${e.message}. Run 'replens ${command} --help'.\n`);
      return 2;
    }
    if (e instanceof ReplensError) {
      // The reason right after the file's base name; the path as given, when it says more, on a line of its own.
      const file = errorFile(e);
      process.stderr.write(`replens: ${userMessage(e)}\n${file !== undefined && file !== basename(file) ? `  file: ${file}\n` : ''}`);
      // A file that did not read back as produced is RepLens' fault, not the input's.
      return e instanceof OutputError && e.code === 'unverified' ? 70 : 1;
    }
    throw e;
  }
}

// A reader that has seen enough (`replens tensors big.pth | head`) closes the pipe: stop quietly, as Unix tools do.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  process.exit(0);
});

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`replens: internal error: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 70;
  },
);
