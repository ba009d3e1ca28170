// The BullMQ queue over a real Redis (redis-server on a free loopback port, with a password):
// `queue add` twice queues each source once; three worker processes take the jobs, one is
// SIGKILLed mid-job and its job is taken over once its lock expires; every shard then exists
// once, byte for byte what a single-process tokenize writes, and adding the sources again
// tokenizes nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDualToken } from '../src/node/load.js';
import { addJobs, connectionFor, jobIdFor, QUEUE_NAME, queueStatus, startWorker, type TokenizeJobData, type TokenizeJobResult } from '../src/node/queue.js';
import { configHash } from '../src/node/shards.js';
import { locateModel } from '../src/node/load.js';
import { write } from './helpers/dataset.js';
import { tokenize } from '../src/node/tokenize.js';
import { readShard, shardFile, writeShard } from './helpers/dataset.js';
import { caseDir } from './helpers/golden.js';
import { bundleRunner, runnerEnv, startRedis, type TestRedis } from './helpers/redis.js';

const MODEL = caseDir('tiny');
let redis: TestRedis;
let runner: string;
let dir: string;
let sources: string[];
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dualtoken-queue-'));
  sources = Array.from({ length: 6 }, (_, i) => {
    const path = join(dir, 'data', `shard-${String(i).padStart(3, '0')}.tar`);
    writeShard(path, 1000 * i, 16);
    return path;
  });
  [redis, runner] = await Promise.all([startRedis('s3cret pass'), bundleRunner()]);
  // The reference: one process, no queue.
  const model = await loadDualToken(MODEL, { silenceAdapterWarnings: true });
  try {
    await tokenize(model, sources, join(dir, 'ref'), { batchSize: 2 });
  } finally {
    model.dispose();
  }
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis?.stop();
  if (runner) rmSync(runner, { force: true });
});

function start(args: string[]): { proc: ChildProcess; stderr: () => string; exit: Promise<{ status: number | null; signal: NodeJS.Signals | null }> } {
  const proc = spawn(process.execPath, [runner, ...args], { env: runnerEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  proc.stdout!.on('data', (d) => (stderr += d));
  const exit = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((done) => proc.on('exit', (status, signal) => done({ status, signal })));
  return { proc, stderr: () => stderr, exit };
}

async function run(args: string[]): Promise<{ status: number | null; out: string }> {
  const c = start(args);
  const { status } = await c.exit;
  return { status, out: c.stderr() };
}

describe('BullMQ queue on a real Redis', () => {
  it('3 workers, one SIGKILLed mid-job: each shard once, as a single-process tokenize writes it', async () => {
    const out = join(dir, 'out');
    const add = ['queue', 'add', '--redis', redis.url, '--model', MODEL, '--out', out, '--batch-size', '2', ...sources];
    const first = await run(add);
    expect(first.status, first.out).toBe(0);
    expect(first.out).toMatch(/queued 6 source\(s\)/);
    const second = await run(add);
    expect(second.status, second.out).toBe(0);
    expect(second.out).toMatch(/queued 0 source\(s\), 6 already queued or done/);
    const queue = new Queue<TokenizeJobData, TokenizeJobResult>(QUEUE_NAME, { connection: connectionFor(redis.url) });
    try {
      expect((await queue.getJobCounts('waiting')).waiting).toBe(6);

      const workers = [0, 1, 2].map(() => start(['worker', '--redis', redis.url, '--lock-duration', '1500', '--until-empty']));
      // Kill the first worker that starts a job, as soon as it has (the model is loaded, the job is active).
      let killedOn: string | undefined;
      let victim = -1;
      await new Promise<void>((done, fail) => {
        const t0 = Date.now();
        const poll = setInterval(() => {
          for (const [i, w] of workers.entries()) {
            const m = /: (\S+\.tar) \(attempt 1\)/.exec(w.stderr());
            if (!m) continue;
            w.proc.kill('SIGKILL');
            [victim, killedOn] = [i, m[1]];
            clearInterval(poll);
            return done();
          }
          if (Date.now() - t0 > 60_000) {
            clearInterval(poll);
            fail(new Error(`no worker took a job: ${workers.map((w) => w.stderr()).join('\n---\n')}`));
          }
        }, 2);
      });
      expect((await workers[victim].exit).signal).toBe('SIGKILL');
      const others = workers.filter((_, i) => i !== victim);
      const timeout = setTimeout(() => others.forEach((w) => w.proc.kill('SIGKILL')), 90_000);
      const exits = await Promise.all(others.map((w) => w.exit));
      clearTimeout(timeout);
      expect(exits.map((e) => e.status), others.map((w) => w.stderr()).join('\n---\n')).toEqual([0, 0]);

      const status = await queueStatus(redis.url);
      expect([status.waiting, status.active, status.completed, status.failed, status.delayed]).toEqual([0, 0, 6, 0, 0]);
      const jobs = await queue.getCompleted(0, -1);
      // Each source tokenized once (a skip would mean a second, redundant job); the killed worker's
      // job finished by another worker.
      expect(jobs.map((j) => j.data.source).sort()).toEqual([...sources].sort());
      expect(jobs.every((j) => !j.returnvalue.skipped && j.returnvalue.images === 16)).toBe(true);
      const taken = jobs.find((j) => j.data.source === killedOn)!;
      expect(taken.id).toBe(jobIdFor(out, killedOn!));
      expect(taken.returnvalue.worker).not.toMatch(new RegExp(`:${workers[victim].proc.pid}$`));
      console.log(`worker ${victim} (pid ${workers[victim].proc.pid}) killed on ${killedOn}, finished by ${taken.returnvalue.worker}; ${status.images} images at ${status.imagesPerSecond.toFixed(1)} images/s`);

      // Every shard once, complete, byte for byte the single-process one; the manifest lists all six.
      const names = sources.map((_, i) => `shard-${String(i).padStart(3, '0')}`);
      expect(readdirSync(out).filter((f) => !f.startsWith('.')).sort()).toEqual(['manifest.json', ...names.map((n) => `${n}.tokens.safetensors`)]);
      for (const n of names) expect(readFileSync(shardFile(out, n)).equals(readFileSync(shardFile(join(dir, 'ref'), n))), n).toBe(true);
      expect(readFileSync(join(out, 'manifest.json'), 'utf8')).toBe(readFileSync(join(dir, 'ref', 'manifest.json'), 'utf8'));
      expect((await readShard(shardFile(out, names[0]))).keys).toHaveLength(16);

      // Adding the same sources again queues and tokenizes nothing.
      const mtimes = names.map((n) => statSync(shardFile(out, n)).mtimeMs);
      const third = await run(add);
      expect(third.out).toMatch(/queued 0 source\(s\), 6 already queued or done/);
      expect((await queue.getJobCounts('waiting', 'completed'))).toEqual({ waiting: 0, completed: 6 });
      expect(names.map((n) => statSync(shardFile(out, n)).mtimeMs)).toEqual(mtimes);
      const st = await run(['queue', 'status', '--redis', redis.url]);
      expect(st.status).toBe(0);
      expect(st.out).toMatch(/waiting 0, active 0, completed 6, failed 0/);
    } finally {
      await queue.close();
    }
  });

  it('a job that keeps failing is retried with backoff, then failed with its reason; a later add retries it', async () => {
    const queueName = 'retries';
    const out = join(dir, 'out-retries');
    const bad = join(dir, 'data', 'corrupt.tar');
    write(bad, new Uint8Array(1536).fill(65));
    const hash = configHash(locateModel(MODEL).config);
    const add = () => addJobs({ redis: redis.url, model: MODEL, configHash: hash, out, sources: [bad, sources[0]], queueName, backoffMs: 50 });
    expect((await add()).added).toHaveLength(2);
    const lines: string[] = [];
    const worker = await startWorker({ redis: redis.url, load: (p) => loadDualToken(p, { silenceAdapterWarnings: true }), queueName, lockDuration: 5000, log: (l) => lines.push(l) });
    try {
      const t0 = Date.now();
      let s = await queueStatus(redis.url, queueName);
      while ((s.completed < 1 || s.failed < 1) && Date.now() - t0 < 30_000) {
        await new Promise((r) => setTimeout(r, 100));
        s = await queueStatus(redis.url, queueName);
      }
      expect([s.completed, s.failed, s.waiting, s.active]).toEqual([1, 1, 0, 0]);
      expect(s.failures).toEqual([{ source: bad, reason: expect.stringMatching(/corrupt\.tar: not a tar file/) }]);
      expect(lines.filter((l) => l.includes('corrupt.tar: ') && /attempt \d of 3/.test(l))).toHaveLength(3);
      const again = await add();
      expect([again.added, again.existing, again.retried]).toEqual([[], [sources[0]], [bad]]);
    } finally {
      await worker.close();
    }
  });
});
