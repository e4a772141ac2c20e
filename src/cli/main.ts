import { version } from '../../package.json';

const HELP = `RepLens ${version} — inspect RepVGG-style models and convert them to deploy form

Usage: replens <command> [options]

Commands:
  help                 Show this help
  version              Print the version

Options:
  -h, --help           Show this help
  -v, --version        Print the version
`;

function main(argv: string[]): number {
  const [command] = argv;
  if (command === undefined || command === 'help' || command === '-h' || command === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (command === 'version' || command === '-v' || command === '--version') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  process.stderr.write(`replens: unknown command '${command}'. Run 'replens --help'.\n`);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
