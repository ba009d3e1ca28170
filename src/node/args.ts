// A small, strict command-line parser: --flag value, --flag=value, boolean switches, positionals.
export interface ParsedArgs {
  command: string;
  flags: Map<string, string>;
  switches: Set<string>;
  positionals: string[];
}

export function parseArgs(argv: string[], valueFlags: string[], switchFlags: string[]): ParsedArgs {
  const [command = 'help', ...rest] = argv;
  const flags = new Map<string, string>();
  const switches = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (switchFlags.includes(name)) {
      if (eq >= 0) throw new Error(`--${name} takes no value`);
      switches.add(name);
    } else if (valueFlags.includes(name)) {
      const value = eq >= 0 ? arg.slice(eq + 1) : rest[++i];
      if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new Error(`--${name} needs a value`);
      if (flags.has(name)) throw new Error(`--${name} given twice`);
      flags.set(name, value);
    } else {
      throw new Error(`unknown option --${name} for '${command}'`);
    }
  }
  return { command, flags, switches, positionals };
}
