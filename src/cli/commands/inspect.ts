import { basename } from 'node:path';
import { inspectFile } from '../../core/inspect';
import { structureJson, structureText } from '../../core/model/describe';
import { oneFile, parseArgs } from '../args';

export const inspectHelp = 'inspect FILE [--json]   Show stages, blocks and branches (train or deploy form)';

export async function inspectCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { flags: ['--json'] });
  const file = oneFile(args, 'inspect');
  const { structure, fileWarnings } = await inspectFile(file);
  out(args.flags.has('--json') ? JSON.stringify(structureJson(structure, fileWarnings), null, 2) : structureText(structure, basename(file), fileWarnings));
  return 0;
}
