// "compiling kernels (first run on this machine) ...": a CPU driver (lavapipe) compiles each
// pipeline at its first dispatch and keeps it in Mesa's shader cache, so only a machine's first
// run of a kernel is slow (~0.1-2 s per pipeline). Which kernels this machine has compiled is
// remembered in ~/.cache/dualtoken/compiled.json ($XDG_CACHE_HOME respected), per adapter and
// shader cache folder, by a hash of each pipeline's WGSL and constants: a program with any kernel
// not listed gets the notice. A cache that cannot be read counts as empty.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Gpu } from '../core/gpu.js';
import type { Program } from '../core/program.js';

export function defaultCompiledPath(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'dualtoken', 'compiled.json');
}

type Seen = Record<string, string[]>;

function read(path: string): Seen {
  try {
    const data = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (data && typeof data === 'object' && !Array.isArray(data)) return data as Seen;
  } catch {
    // missing or unreadable: nothing compiled yet
  }
  return {};
}

/** A DualToken onNewProgram hook that logs a notice before a program's first run compiles kernels new to this machine. */
export function compileNotice(gpu: Gpu, log: (line: string) => void, path = defaultCompiledPath()): (prog: Program) => void {
  const machine = `${gpu.describe()} | ${process.env.MESA_SHADER_CACHE_DIR ?? 'default shader cache'}`;
  return (prog) => {
    const seen = read(path);
    const known = new Set(seen[machine] ?? []);
    const hashes = prog.kernelInfos().map((k) => createHash('sha256').update(k.code).update(JSON.stringify(k.constants)).digest('hex').slice(0, 16));
    const fresh = hashes.filter((h) => !known.has(h));
    if (!fresh.length) return;
    log(`${prog.label}: compiling ${fresh.length} kernels (first run on this machine) ...`);
    seen[machine] = [...known, ...fresh];
    try {
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(seen));
      renameSync(tmp, path);
    } catch {
      // a cache: not being able to write it only means the notice comes again
    }
  };
}
