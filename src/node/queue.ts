// Tokenizing on many machines: one BullMQ job per SOURCE in a Redis queue, workers that each
// load the model once and tokenize the sources they take, writing the shards exactly as
// `tokenize` does (src/node/tokenize.ts) into an OUTDIR every worker sees (a shared file system).
// - jobId = a hash of (OUTDIR, SOURCE) as absolute paths: adding a source twice queues it once
//   (BullMQ ignores an add whose jobId exists; a job that failed for good is retried instead).
// - A worker that dies mid-job stops renewing its lock; after lockDuration the stalled check of
//   another worker puts the job back and it is redone from the start. Shards are written under a
//   temporary name and renamed: two workers on one shard both rename complete, identical files,
//   and a worker skips a source whose shard is already complete (same config hash and outputs).
// - Failed jobs are retried with exponential backoff (3 attempts); a job for another model
//   config than the worker's fails at once (UnrecoverableError).
// - manifest.json is rebuilt from the shards' headers after each job, under a Redis lock, so
//   the last rebuild sees every shard.
import { createHash, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { DeviceLostError } from '../core/gpu.js';
import type { DualToken } from '../model/dualtoken.js';
import { GaveUp } from './batches.js';
import { openSource, openSources } from './sources.js';
import { configHash, writeManifest, type KeepOutput } from './shards.js';
import { tokenizeSource, type ShardResult } from './tokenize.js';

export const QUEUE_NAME = 'dualtoken-tokenize';

export interface TokenizeJobData {
  /** Absolute paths: every worker must see them at the same place (a shared file system). */
  source: string;
  model: string;
  out: string;
  configHash: string;
  keep: KeepOutput[];
  batchSize: number;
  exifRotate: boolean;
}

export interface TokenizeJobResult {
  shard: string;
  images: number;
  failures: number;
  skipped: boolean;
  seconds: number;
  worker: string;
}

/** BullMQ's connection for a redis:// or rediss:// (TLS) URL, password and db included (ioredis parses it). */
export function connectionFor(url: string, failFast = false): ConnectionOptions {
  if (!/^rediss?:\/\//.test(url)) throw new Error(`--redis ${redacted(url)}: expected redis://[[user]:password@]host[:port][/db] or rediss://... (TLS)`);
  // Workers wait for Redis to come back; one-shot commands (add, status) give up after a few tries.
  return failFast ? { url, maxRetriesPerRequest: 2, connectTimeout: 5000, retryStrategy: (n: number) => (n > 3 ? null : 300 * n) } : { url, maxRetriesPerRequest: null };
}

/** The URL without its password, for messages. */
export function redacted(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

/** A one-shot queue (add, status): connection errors are kept for the message instead of printed. */
function oneShotQueue(name: string, redis: string): { queue: Queue<TokenizeJobData, TokenizeJobResult>; failure: (e: unknown) => Error } {
  const queue = new Queue<TokenizeJobData, TokenizeJobResult>(name, { connection: connectionFor(redis, true) });
  let last: Error | undefined;
  queue.on('error', (e) => (last = e));
  const failure = (e: unknown) => new Error(`${redacted(redis)}: ${(last ?? (e as Error)).message ?? String(e)}`);
  return { queue, failure };
}

/** The deterministic job id of a source (same OUTDIR and SOURCE -> same id). */
export function jobIdFor(outDir: string, source: string): string {
  return `tok-${createHash('sha256').update(`${resolve(outDir)}\0${resolve(source)}`).digest('hex').slice(0, 40)}`;
}

export interface AddOptions {
  redis: string;
  model: string;
  configHash: string;
  out: string;
  sources: string[];
  keep?: KeepOutput[];
  batchSize?: number;
  exifRotate?: boolean;
  queueName?: string;
  attempts?: number;
  /** Backoff of the first retry (ms), doubled for each next one. */
  backoffMs?: number;
}

export interface AddResult {
  added: string[];
  /** Already queued, running or done (not added again). */
  existing: string[];
  /** Had failed for good; retried. */
  retried: string[];
}

/** One job per source (see the file comment). Sources are checked (exist, shard names unique) before anything is queued. */
export async function addJobs(o: AddOptions): Promise<AddResult> {
  openSources(o.sources);
  const { queue, failure } = oneShotQueue(o.queueName ?? QUEUE_NAME, o.redis);
  const result: AddResult = { added: [], existing: [], retried: [] };
  try {
    await queue.waitUntilReady().catch((e) => {
      throw failure(e);
    });
    for (const source of o.sources) {
      const jobId = jobIdFor(o.out, source);
      const data: TokenizeJobData = {
        source: resolve(source),
        model: resolve(o.model),
        out: resolve(o.out),
        configHash: o.configHash,
        keep: o.keep ?? [],
        batchSize: o.batchSize ?? 8,
        exifRotate: o.exifRotate ?? false,
      };
      const old = await queue.getJob(jobId);
      if (old) {
        if ((await old.getState()) === 'failed') {
          await old.retry('failed');
          result.retried.push(source);
        } else result.existing.push(source);
        continue;
      }
      await queue.add('tokenize', data, {
        jobId,
        attempts: o.attempts ?? 3,
        backoff: { type: 'exponential', delay: o.backoffMs ?? 2000 },
        removeOnComplete: false,
        removeOnFail: false,
      });
      result.added.push(source);
    }
  } finally {
    await queue.close().catch(() => {});
  }
  return result;
}

export interface QueueStatus {
  waiting: number;
  active: number;
  completed: number;
  failed: number;
  delayed: number;
  /** Images in the completed jobs (the last 1000 looked at). */
  images: number;
  /** Those images over the time from the first job's start to the last one's end. */
  imagesPerSecond: number;
  /** Failed jobs: source and reason (the last 20). */
  failures: { source: string; reason: string }[];
  /** Running jobs (20 at most): source, worker, images done of total (the job's last progress report). */
  running: { source: string; worker?: string; images?: number; total?: number }[];
}

export async function queueStatus(redis: string, queueName = QUEUE_NAME): Promise<QueueStatus> {
  const { queue, failure } = oneShotQueue(queueName, redis);
  try {
    await queue.waitUntilReady().catch((e) => {
      throw failure(e);
    });
    const c = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized');
    const done = await queue.getCompleted(0, 999);
    let images = 0;
    let first = Infinity;
    let last = 0;
    for (const j of done) {
      if (!j.returnvalue || j.returnvalue.skipped) continue;
      images += j.returnvalue.images;
      first = Math.min(first, j.processedOn ?? Infinity);
      last = Math.max(last, j.finishedOn ?? 0);
    }
    const failed = await queue.getFailed(0, 19);
    const active = await queue.getActive(0, 19);
    return {
      waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      completed: c.completed ?? 0,
      failed: c.failed ?? 0,
      delayed: c.delayed ?? 0,
      images,
      imagesPerSecond: last > first ? images / ((last - first) / 1000) : 0,
      failures: failed.map((j) => ({ source: j.data.source, reason: j.failedReason })),
      running: active.map((j) => {
        const p = (typeof j.progress === 'object' ? j.progress : {}) as { images?: number; total?: number };
        return { source: j.data.source, worker: j.processedBy, images: p.images, total: p.total };
      }),
    };
  } finally {
    await queue.close().catch(() => {});
  }
}

export function formatStatus(s: QueueStatus): string {
  const lines = [`waiting ${s.waiting}, active ${s.active}, completed ${s.completed}, failed ${s.failed}, delayed (retrying) ${s.delayed}; ${s.images} images, ${s.imagesPerSecond.toFixed(1)} images/s`];
  for (const r of s.running) lines.push(`running: ${r.source}${r.worker ? ` on ${r.worker}` : ''}${r.total ? `: ${r.images ?? 0}/${r.total} images` : ''}`);
  for (const f of s.failures) lines.push(`failed: ${f.source}: ${f.reason}`);
  return lines.join('\n');
}

/** Runs `fn` holding a Redis lock (SET NX PX with a token; released only by its holder). Waits up to `waitMs`. */
async function withRedisLock<T>(redis: Redis, key: string, fn: () => T, waitMs = 60_000): Promise<T> {
  const token = randomBytes(8).toString('hex');
  const until = Date.now() + waitMs;
  while ((await redis.set(key, token, 'PX', 30_000, 'NX')) !== 'OK') {
    if (Date.now() > until) throw new Error(`${key}: lock not free after ${waitMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    return fn();
  } finally {
    await redis.eval(`if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`, 1, key, token);
  }
}

export interface WorkerOptions {
  redis: string;
  /** Loads a model (once per model path; kept for the worker's life). */
  load: (modelPath: string) => Promise<DualToken>;
  concurrency?: number;
  /** BullMQ lock duration (ms, 30000): how long a dead worker's job waits before another takes it. */
  lockDuration?: number;
  queueName?: string;
  log?: (line: string) => void;
  /** A name for this worker in job records (host:pid). */
  name?: string;
}

export interface RunningWorker {
  /** Lets the jobs in progress finish (or, with force, drops them for another worker), then frees the model. */
  close(force?: boolean): Promise<void>;
  /** Settles when the worker has closed. */
  closed: Promise<void>;
  worker: Worker<TokenizeJobData, TokenizeJobResult>;
}

/** Starts a worker taking tokenize jobs until closed. */
export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  // Refuse a URL that cannot work (refused, wrong password, TLS mismatch) at once; later outages are waited out.
  const probe = oneShotQueue(o.queueName ?? QUEUE_NAME, o.redis);
  try {
    await probe.queue.waitUntilReady().catch((e) => {
      throw probe.failure(e);
    });
  } finally {
    await probe.queue.close().catch(() => {});
  }
  const log = o.log ?? (() => {});
  const name = o.name ?? `${process.pid}`;
  const models = new Map<string, Promise<DualToken>>();
  const redis = new Redis(o.redis, { maxRetriesPerRequest: null });
  redis.on('error', () => {}); // the worker's own connection reports the same outage
  const modelFor = (path: string) => {
    let m = models.get(path);
    if (!m) {
      m = o.load(path);
      models.set(path, m);
      m.catch(() => models.delete(path));
    }
    return m;
  };
  const process_ = async (job: Job<TokenizeJobData, TokenizeJobResult>): Promise<TokenizeJobResult> => {
    const d = job.data;
    const model = await modelFor(d.model);
    try {
      return await tokenizeJob(job, model);
    } catch (e) {
      // A lost device: the next attempt (this worker's or another's) loads the model again.
      if ((e instanceof DeviceLostError || e instanceof GaveUp) && models.get(d.model)) {
        models.delete(d.model);
        try {
          model.dispose();
        } catch {
          // gone with its device
        }
      }
      throw e;
    }
  };
  const tokenizeJob = async (job: Job<TokenizeJobData, TokenizeJobResult>, model: DualToken): Promise<TokenizeJobResult> => {
    const d = job.data;
    const hash = configHash(model.config);
    if (hash !== d.configHash) throw new UnrecoverableError(`${d.model}: its config hash ${hash.slice(0, 12)} is not the one the job was queued with (${d.configHash.slice(0, 12)})`);
    const source = openSource(d.source);
    let lastReport = 0;
    log(`${name}: ${d.source} (attempt ${job.attemptsMade + 1})`);
    const r: ShardResult = await tokenizeSource(model, source, d.out, {
      batchSize: d.batchSize,
      keep: d.keep,
      exifRotate: d.exifRotate,
      onProgress: (p) => {
        const now = Date.now();
        if (now - lastReport < 500) return;
        lastReport = now;
        void job.updateProgress({ images: p.images, total: p.totalImages, imagesPerSecond: p.imagesPerSecond }).catch(() => {});
      },
    });
    await withRedisLock(redis, `${o.queueName ?? QUEUE_NAME}:manifest-lock:${d.out}`, () => writeManifest(d.out));
    log(`${name}: ${d.source} -> ${r.shard}: ${r.skipped ? 'already complete' : `${r.images} images, ${r.failures.length} failed, ${r.seconds.toFixed(1)} s`}`);
    return { shard: r.shard, images: r.images, failures: r.failures.length, skipped: r.skipped, seconds: r.seconds, worker: name };
  };
  const lockDuration = o.lockDuration ?? 30_000;
  const worker = new Worker<TokenizeJobData, TokenizeJobResult>(o.queueName ?? QUEUE_NAME, process_, {
    connection: connectionFor(o.redis),
    concurrency: o.concurrency ?? 1,
    lockDuration,
    stalledInterval: Math.min(30_000, lockDuration),
    maxStalledCount: 2,
    name,
    autorun: false,
  });
  worker.on('failed', (job, e) => job && log(`${name}: ${job.data.source}: ${e.message} (attempt ${job.attemptsMade} of ${job.opts.attempts ?? 1})`));
  worker.on('error', (e) => log(`${name}: ${e.message}`));
  await worker.waitUntilReady();
  const closed = worker.run();
  let closing: Promise<void> | undefined;
  const close = (force = false) =>
    (closing ??= (async () => {
      await worker.close(force);
      await closed.catch(() => {});
      redis.disconnect();
      for (const m of models.values()) (await m.catch(() => undefined))?.dispose();
    })());
  return { close, closed, worker };
}
