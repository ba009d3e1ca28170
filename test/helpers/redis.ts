// A real Redis for the queue tests: redis-server (Debian's binary) on a free loopback port, no
// persistence, stopped by the test. And the dataset runner (test/helpers/dataset-runner.ts)
// bundled with esbuild into node_modules/.cache (so that its packages and the jpeg-turbo wasm
// resolve from there), for child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { shaderDirs } from '../../src/node/shaders.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A port that was free a moment ago (a server bound to port 0, then closed). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

/** PING over a raw socket: true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((done) => {
    const c = createConnection({ host: '127.0.0.1', port });
    const t = setTimeout(() => (c.destroy(), done(false)), 500);
    c.once('error', () => (clearTimeout(t), done(false)));
    c.once('connect', () => c.write('PING\r\n'));
    c.once('data', (d) => {
      clearTimeout(t);
      c.destroy();
      // Up (with a password: it answers that one is needed).
      done(d.toString().startsWith('+PONG') || d.toString().startsWith('-NOAUTH'));
    });
  });
}

export interface TestRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Starts redis-server on 127.0.0.1 (a free port, no RDB / AOF, optionally a password), waits until it answers (10 s at most). */
export async function startRedis(password?: string): Promise<TestRedis> {
  const port = await freePort();
  const auth = password ? ['--requirepass', password] : [];
  const proc: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...auth], { stdio: 'ignore' });
  let exited = false;
  proc.once('exit', () => (exited = true));
  for (let i = 0; i < 100 && !exited; i++) {
    if (await ping(port)) {
      return {
        url: password ? `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}` : `redis://127.0.0.1:${port}`,
        port,
        stop: () =>
          new Promise<void>((done) => {
            if (exited) return done();
            proc.once('exit', () => done());
            proc.kill('SIGTERM');
          }),
      };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error(`redis-server did not answer PING on port ${port}`);
}

/** Bundles test/helpers/dataset-runner.ts; returns the path of the .mjs to run with node (the caller removes it). */
export async function bundleRunner(): Promise<string> {
  const dir = join(ROOT, 'node_modules', '.cache', 'dualtoken-tests');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `dataset-runner-${process.pid}.mjs`);
  await build({
    entryPoints: [join(ROOT, 'test', 'helpers', 'dataset-runner.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: out,
    packages: 'external',
    logLevel: 'error',
  });
  return out;
}

/** The environment a bundled runner needs (the shaders are not beside the bundle). */
export const runnerEnv = () => ({ ...process.env, DUALTOKEN_SHADERS: shaderDirs(ROOT).join(delimiter) });
