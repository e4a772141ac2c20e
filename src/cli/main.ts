import { version } from '../../package.json';
import { ModelFormatError } from '../core/formats/errors';
import { FusionError } from '../core/fuse/fuseBlock';
import { GraphError } from '../core/graph/buildGraph';
import { ParityError } from '../core/parity/errors';
import { OutputError } from '../core/writers/atomicFile';
import { UsageError } from './args';
import { convertCommand, convertHelp } from './commands/convert';
import { inspectCommand, inspectHelp } from './commands/inspect';
import { parityCommand, parityHelp } from './commands/parity';
import { tensorsCommand, tensorsHelp } from './commands/tensors';

type Command = (argv: string[], out: (s: string) => void) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  inspect: inspectCommand,
  tensors: tensorsCommand,
  convert: convertCommand,
  parity: parityCommand,
};

const HELP = `RepLens ${version} — inspect RepVGG-style models and convert them to deploy form

Usage: replens <command> [options]

Commands:
  ${inspectHelp}
  ${tensorsHelp}
  ${convertHelp}
  ${parityHelp}

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
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(`replens: unknown command '${command}'. Run 'replens --help'.\n`);
    return 2;
  }
  try {
    return await run(rest, out);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`replens ${command}: ${e.message}. Run 'replens --help'.\n`);
      return 2;
    }
    if (e instanceof ModelFormatError || e instanceof FusionError || e instanceof OutputError || e instanceof GraphError || e instanceof ParityError) {
      process.stderr.write(`replens: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`replens: internal error: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 70;
  },
);
