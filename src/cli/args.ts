/** A usage mistake: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {}

export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string | true>;
}

/**
 * Parses `--name value`, `--name=value` and bare `--flag`. Only names listed in
 * `valued` take a value, so a file name after a flag is never swallowed.
 */
export function parseArgs(
  argv: readonly string[],
  spec: { valued?: readonly string[]; flags?: readonly string[]; aliases?: Record<string, string> },
): ParsedArgs {
  const valued = new Set(spec.valued ?? []);
  const known = new Set([...valued, ...(spec.flags ?? [])]);
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    let [name, value] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    name = spec.aliases?.[name] ?? name;
    if (!known.has(name)) throw new UsageError(`unknown option '${name}'`);
    if (valued.has(name)) {
      value ??= argv[++i];
      if (value === undefined) throw new UsageError(`option '${name}' needs a value`);
      flags.set(name, value);
    } else {
      if (value !== undefined) throw new UsageError(`option '${name}' takes no value`);
      flags.set(name, true);
    }
  }
  return { positional, flags };
}

export function oneFile(args: ParsedArgs, command: string): string {
  if (args.positional.length !== 1) throw new UsageError(`'replens ${command}' takes exactly one FILE`);
  return args.positional[0];
}

/** `--qarepvgg v1|v2`: what a plain state dict cannot say about its QARepVGG blocks (QARepVGGBlockV2's AvgPool branch has no tensors). */
export function qarepvggFrom(args: ParsedArgs): 'v1' | 'v2' | undefined {
  const value = args.flags.get('--qarepvgg');
  if (value === undefined) return undefined;
  if (value !== 'v1' && value !== 'v2') throw new UsageError('--qarepvgg must be v1 or v2');
  return value;
}

/** A numeric flag's value, checked; undefined when the flag is absent. */
export function numberFlag(args: ParsedArgs, flag: string, check: (n: number) => boolean, what: string): number | undefined {
  const text = args.flags.get(flag);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (typeof text !== 'string' || text.trim() === '' || !check(n)) throw new UsageError(`${flag} must be ${what}`);
  return n;
}
