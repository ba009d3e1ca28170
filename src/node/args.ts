// The command line, strictly: a command, then --flag value, --flag=value, boolean switches and
// positionals. node:util's parseArgs splits the words into tokens (non-strict, so that the checks
// and their messages stay ours: an unknown option, a missing value, a flag given twice); words
// that start with one dash are positionals, as a '-' (stdout) or a negative number must be.
import { parseArgs as tokenize } from 'node:util';

export interface ParsedArgs {
  command: string;
  flags: Map<string, string>;
  switches: Set<string>;
  positionals: string[];
}

export function parseArgs(argv: string[], valueFlags: string[], switchFlags: string[]): ParsedArgs {
  const [command = 'help', ...rest] = argv;
  // parseArgs would take the word after '-x' as the value of a value flag 'x'.
  for (const f of valueFlags) if (f.length < 2) throw new Error(`value flag '${f}': one letter is not supported`);
  const options = Object.fromEntries([...valueFlags.map((f) => [f, { type: 'string' as const }]), ...switchFlags.map((f) => [f, { type: 'boolean' as const }])]);
  const { tokens } = tokenize({ args: rest, options, strict: false, allowPositionals: true, tokens: true });
  const flags = new Map<string, string>();
  const switches = new Set<string>();
  const positionals: string[] = [];
  let shortAt = -1; // a word of short options ('-x', '-xy': several tokens, one index) is a positional
  for (const token of tokens) {
    if (token.kind === 'positional') positionals.push(token.value);
    else if (token.kind === 'option-terminator') throw new Error(`unknown option -- for '${command}'`);
    else if (!token.rawName.startsWith('--')) {
      if (token.index !== shortAt) positionals.push(rest[token.index]);
      shortAt = token.index;
    } else if (switchFlags.includes(token.name)) {
      if (token.inlineValue) throw new Error(`--${token.name} takes no value`);
      switches.add(token.name);
    } else if (valueFlags.includes(token.name)) {
      const value = token.value;
      if (value === undefined || (!token.inlineValue && value.startsWith('--'))) throw new Error(`--${token.name} needs a value`);
      if (flags.has(token.name)) throw new Error(`--${token.name} given twice`);
      flags.set(token.name, value);
    } else throw new Error(`unknown option --${rest[token.index].slice(2).split('=', 1)[0]} for '${command}'`);
  }
  return { command, flags, switches, positionals };
}
