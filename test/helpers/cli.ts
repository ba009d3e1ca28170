// The built CLI (dist/node/cli.js, made by `npm run build`) run as a child process, for the CLI tests.
import { spawnSync, type StdioOptions } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'node', 'cli.js');

export interface CliResult {
  status: number;
  /** stderr without its final newline: every line, nothing filtered. */
  stderr: string;
  stdout: Buffer;
}

/** Runs `dualtoken ARGS --quiet` (stdout and stderr captured unless `stdio` says otherwise); a run over `timeoutMs` is killed (status -1). */
export function cli(args: string[], timeoutMs = 120_000, stdio: StdioOptions = ['ignore', 'pipe', 'pipe']): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args, '--quiet'], { timeout: timeoutMs, stdio, maxBuffer: 1 << 30 });
  return { status: r.status ?? -1, stderr: (r.stderr?.toString('utf8') ?? '').replace(/\n$/, ''), stdout: r.stdout ?? Buffer.alloc(0) };
}
