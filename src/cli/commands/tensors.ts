import { openModelFile } from '../../core/formats/openModelFile';
import { formatBytes } from '../../shared/format';
import { oneFile, parseArgs } from '../args';

export const tensorsHelp = 'tensors FILE [--json]   List every tensor: name, dtype, shape, bytes';

export async function tensorsCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { flags: ['--json'] });
  const model = await openModelFile(oneFile(args, 'tensors'));
  try {
    if (args.flags.has('--json')) {
      out(
        JSON.stringify(
          {
            format: model.format,
            tensors: model.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.byteLength })),
            metadata: model.metadata,
            warnings: model.warnings,
          },
          null,
          2,
        ),
      );
      return 0;
    }
    const width = Math.max(4, ...model.tensors.map((t) => t.name.length));
    out(`${model.path}: ${model.format}, ${model.tensors.length} tensors`);
    for (const t of model.tensors) {
      out(`${t.name.padEnd(width)}  ${t.dtype.padEnd(8)}  [${t.shape.join(', ')}]  ${formatBytes(t.byteLength)}`);
    }
    for (const w of model.warnings) out(`warning: ${w}`);
    return 0;
  } finally {
    await model.close();
  }
}
