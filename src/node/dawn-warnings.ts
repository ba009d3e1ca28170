// Keeping Dawn's adapter warnings off stderr. While it gathers an adapter's limits, Dawn's Vulkan
// backend prints "Warning: maxDynamic{Uniform,Storage}BuffersPerPipelineLayout artificially
// reduced from 1000000 to 16 to fit dynamic offset allocation limit." (lavapipe reports 1000000,
// Dawn's fixed-size arrays hold 16) with fprintf(stderr) in C++ (dawn/common/Log.cpp): no instance
// flag, toggle, log level or requested limit turns it off, and requestAdapter is the only call that
// prints it. So:
// - withoutDawnWarnings points file descriptor 2 at /dev/null around that call. Node has no dup(),
//   so fd 2 is closed and /dev/null opened in its place (open() takes the lowest free descriptor),
//   then stderr is reopened through /proc/self/fd from a copy made first. That gives back the same
//   stream only for a pipe, a terminal or another character device, or a file opened for
//   appending (`2>>log`);
// - for the others, a socket (child_process's 'pipe', journald) or a file opened without append
//   (`2>log`, whose offset a reopening would lose), the CLI runs itself as a child whose stderr it
//   filters line by line (runWithFilteredStderr).
import { spawn } from 'node:child_process';
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';

/** Dawn's lines, exactly. */
const DAWN_WARNING = /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;
/** Set in the child of runWithFilteredStderr. */
const FILTERED_ENV = 'DUALTOKEN_STDERR_FILTERED';

/** Flags that reopen stderr as the same stream, or undefined where a reopening would not (see the file comment). */
function reopenFlags(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    fstatSync(0);
    fstatSync(1); // 0 and 1 open: the next open() takes 2
    const st = fstatSync(2);
    const base = constants.O_WRONLY | constants.O_NOCTTY;
    if (st.isFIFO() || st.isCharacterDevice()) return base;
    const flags = parseInt(/^flags:\s*([0-7]+)/m.exec(readFileSync('/proc/self/fdinfo/2', 'utf8'))?.[1] ?? '0', 8);
    return st.isFile() && flags & constants.O_APPEND ? base | constants.O_APPEND : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `fn` (an adapter request) with fd 2 on /dev/null where stderr can be restored exactly. */
export async function withoutDawnWarnings<T>(fn: () => Promise<T>): Promise<T> {
  const flags = reopenFlags();
  if (flags === undefined) return fn();
  const copy = openSync('/proc/self/fd/2', flags);
  closeSync(2);
  const devNull = openSync('/dev/null', 'w');
  if (devNull !== 2) {
    // Another thread opened a file in the instant fd 2 was free: it owns fd 2 now; leave it be.
    closeSync(devNull);
    closeSync(copy);
    return fn();
  }
  try {
    return await fn();
  } finally {
    closeSync(2);
    openSync(`/proc/self/fd/${copy}`, flags); // takes fd 2 again
    closeSync(copy);
  }
}

/** Whether this process must run itself under runWithFilteredStderr. */
export function needsStderrFilter(): boolean {
  return process.platform === 'linux' && process.env[FILTERED_ENV] === undefined && reopenFlags() === undefined;
}

/**
 * Runs this script again as a child with the same arguments, stdin and stdout, passing its stderr
 * on without Dawn's warning lines; resolves to the child's exit status (signals are forwarded, and
 * a child killed by one kills this process the same way).
 */
export function runWithFilteredStderr(): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'pipe'],
    env: { ...process.env, [FILTERED_ENV]: '1' },
  });
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of signals) process.on(signal, forward);
  let partial = ''; // the current line so far, held while it could still be one of Dawn's
  let passed = false; // part of the current line was already passed on
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (passed || !DAWN_WARNING.test(line)) process.stderr.write(`${line}\n`);
      passed = false;
    }
    if (partial && !'Warning: '.startsWith(partial.slice(0, 9))) {
      process.stderr.write(partial); // e.g. a progress line redrawn with \r
      partial = '';
      passed = true;
    }
  });
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      process.stderr.write(partial);
      for (const s of signals) process.off(s, forward);
      if (signal) process.kill(process.pid, signal);
      resolve(code ?? 1);
    });
  });
}
