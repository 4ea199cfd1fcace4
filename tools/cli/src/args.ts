/** Command-line parsing: positionals and `--flag value` / `--flag=value` / boolean `--flag`. */
export interface ParsedArgs {
  readonly positionals: string[];
  readonly flags: Map<string, string[]>;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Flags that take no value. */
const BOOLEAN_FLAGS = new Set([
  'json',
  'all',
  'cascade',
  'purge',
  'check',
  'activate',
  'help',
  'no-dsn',
  'disabled',
]);

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  const add = (name: string, value: string): void => {
    flags.set(name, [...(flags.get(name) ?? []), value]);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      if (name === '') throw new UsageError(`bad option ${arg}`);
      if (eq >= 0) add(name, arg.slice(eq + 1));
      else if (BOOLEAN_FLAGS.has(name)) add(name, 'true');
      else {
        const value = argv[i + 1];
        if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
        add(name, value);
        i++;
      }
    } else {
      positionals.push(arg);
    }
  }
  return { positionals, flags };
}

export const flag = (args: ParsedArgs, name: string): string | undefined => args.flags.get(name)?.at(-1);
export const flags = (args: ParsedArgs, name: string): string[] => args.flags.get(name) ?? [];
export const has = (args: ParsedArgs, name: string): boolean => flag(args, name) === 'true';
