import { basename } from 'node:path';
import { inspectFile } from '../../core/inspect';
import { structureJson, structureText } from '../../core/model/describe';
import { weightsText } from '../../shared/format';
import { oneFile, parseArgs, qarepvggFrom } from '../args';

export const inspectHelp = `inspect FILE [--weights KEY] [--qarepvgg v1|v2] [--json]
                       Show stages, blocks and branches (train or deploy form); --weights reads
                       another of a training checkpoint's weights (e.g. model instead of ema);
                       --qarepvgg v2 says a state dict's QARepVGG blocks are QARepVGGBlockV2`;

export async function inspectCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { valued: ['--weights', '--qarepvgg'], flags: ['--json'] });
  const file = oneFile(args, 'inspect');
  const { structure, weights, fileWarnings } = await inspectFile(file, {
    weights: args.flags.get('--weights') as string | undefined,
    qarepvgg: qarepvggFrom(args),
  });
  if (args.flags.has('--json')) {
    out(JSON.stringify({ ...(structureJson(structure, fileWarnings) as object), weights: weights ?? null }, null, 2));
  } else {
    out(structureText(structure, basename(file), fileWarnings));
    if (weights) out(weightsText(weights));
  }
  return 0;
}
