// The dataset commands of the CLI:
//   dualtoken tokenize --model DIR --out OUTDIR [--batch-size 8] [--keep pooler] [--exif-rotate] SOURCE...
//   dualtoken queue add --redis URL --model DIR --out OUTDIR [--batch-size 8] [--keep pooler] SOURCE...
//   dualtoken queue status --redis URL
//   dualtoken worker --redis URL [--concurrency 1] [--lock-duration MS] [--until-empty]
// (src/node/tokenize.ts, src/node/queue.ts). Each takes the parsed arguments and, optionally,
// the CLI's model loader (its --adapter / --kernel / --precision / --autotune handling); without
// one, models are loaded with --adapter only.
import { Queue } from 'bullmq';
import { hostname } from 'node:os';
import type { ParsedArgs } from './args.js';
import { DeviceLossRetry } from './batches.js';
import type { DualToken } from '../model/dualtoken.js';
import { loadDualToken, locateModel } from './load.js';
import { oneLine } from './messages.js';
import { checkNotInputs, checkWritableFolder } from './output.js';
import { addJobs, connectionFor, formatStatus, QUEUE_NAME, queueStatus, startWorker } from './queue.js';
import { configHash, KEEP_OUTPUTS, type KeepOutput } from './shards.js';
import { formatProgress, formatSummary, Interrupted, tokenize } from './tokenize.js';

/** Flags and switches these commands read, for the CLI's parser. */
export const DATASET_VALUE_FLAGS = ['redis', 'concurrency', 'keep', 'lock-duration', 'queue'];
export const DATASET_SWITCHES = ['until-empty'];

export const DATASET_USAGE = `  dualtoken tokenize --model DIR --out OUTDIR [--batch-size 8] [--keep pooler] SOURCE...   (SOURCE: a folder, a list file, a .tar shard)
  dualtoken queue add --redis URL --model DIR --out OUTDIR [--batch-size 8] [--keep pooler] SOURCE...
  dualtoken queue status --redis URL
  dualtoken worker --redis URL [--concurrency 1] [--lock-duration MS] [--until-empty]`;

/** Some images failed: the shards hold the others and the manifest lists them (exit status 2). */
export class DatasetPartialFailure extends Error {}

/** Loads the model at a path (the CLI passes its own, with its kernel options). */
export type ModelLoader = (path: string) => Promise<DualToken>;

function need(args: ParsedArgs, flag: string): string {
  const v = args.flags.get(flag);
  if (!v) throw new Error(`'${args.command}' needs --${flag}`);
  return v;
}

function positiveInt(args: ParsedArgs, flag: string, fallback: number): number {
  const text = args.flags.get(flag);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} ${text}: expected a positive integer`);
  return n;
}

function keepOf(args: ParsedArgs): KeepOutput[] {
  const spec = args.flags.get('keep');
  if (!spec) return [];
  return spec.split(',').map((k) => {
    if (!KEEP_OUTPUTS.includes(k as KeepOutput)) throw new Error(`--keep ${k}: use ${KEEP_OUTPUTS.join(', ')}`);
    return k as KeepOutput;
  });
}

const quiet = (args: ParsedArgs) => args.switches.has('quiet');
const say = (line: string) => console.error(oneLine(line));

/** --adapter only; Dawn's adapter warnings silenced at the first load only (a reload after a lost device may race the old device's driver threads). */
const defaultLoader = (args: ParsedArgs): ModelLoader => {
  let first = true;
  return (path) => {
    const silence = first;
    first = false;
    return loadDualToken(path, { adapter: args.flags.get('adapter'), silenceAdapterWarnings: silence, log: quiet(args) ? undefined : say });
  };
};

/**
 * Runs `fn` with SIGINT (and SIGTERM) turned into a request to stop; another one a second or more
 * later exits at once (status 130). (Ctrl-C under the CLI's stderr filter arrives twice at once:
 * from the terminal and forwarded by the parent.)
 */
async function withStopSignals<T>(onStop: () => void, fn: () => Promise<T>): Promise<T> {
  let askedAt: number | undefined;
  const handler = () => {
    if (askedAt !== undefined) {
      if (Date.now() - askedAt > 1000) process.exit(130);
      return;
    }
    askedAt = Date.now();
    onStop();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  try {
    return await fn();
  } finally {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  }
}

export async function tokenizeCommand(args: ParsedArgs, load: ModelLoader = defaultLoader(args)): Promise<void> {
  const out = need(args, 'out');
  const modelPath = need(args, 'model');
  const sources = args.positionals;
  if (!sources.length) throw new Error(`'tokenize' needs at least one SOURCE (a folder of images, a list file or a .tar shard)`);
  const keep = keepOf(args);
  const batchSize = positiveInt(args, 'batch-size', 8);
  const { files } = locateModel(modelPath);
  checkNotInputs([out], [...sources, ...files]);
  checkWritableFolder(out);
  // A lost GPU device: the model is loaded again on a new one, once, and the batch retried.
  const session: { model: DualToken; retry: DeviceLossRetry } = {
    model: await load(modelPath),
    retry: new DeviceLossRetry(async () => {
      try {
        session.model.dispose();
      } catch {
        // the lost device's buffers may refuse to be destroyed; they are gone with it anyway
      }
      session.model = await load(modelPath);
    }),
  };
  let stop = false;
  let lastLine = 0;
  try {
    const summary = await withStopSignals(
      () => {
        stop = true;
        say('stopping after the current batch (again to quit at once) ...');
      },
      () =>
        tokenize(session, sources, out, {
          batchSize,
          keep,
          exifRotate: args.switches.has('exif-rotate'),
          shouldStop: () => stop,
          onProgress: (p) => {
            if (quiet(args)) return;
            const now = performance.now();
            if (now - lastLine < 2000 && p.images < p.totalImages) return;
            lastLine = now;
            if (process.stderr.isTTY) process.stderr.write(`\r${formatProgress(p)}`.padEnd((process.stderr.columns ?? 1) - 1));
            else say(formatProgress(p));
          },
          onShard: (r) => quiet(args) || (process.stderr.isTTY && process.stderr.write('\n'), say(`${r.source} -> ${r.shard}: ${r.skipped ? 'already complete, skipped' : `${r.images} images, ${r.failures.length} failed`}`)),
        }),
    );
    for (const e of summary.errors) say(`dualtoken: ${e.source}: ${e.message}`);
    if (!quiet(args)) say(formatSummary(summary, out));
    if (summary.errors.length) throw new Error(`${summary.errors.length} of ${sources.length} sources could not be tokenized (no shard written for them)`);
    if (summary.failures) throw new DatasetPartialFailure(`${summary.failures} images failed (listed in the shards' metadata and ${out}/manifest.json); the shards hold the others`);
  } catch (e) {
    if (e instanceof Interrupted) throw new Error(`interrupted: ${e.message}; rerun the same command to finish`);
    throw e;
  } finally {
    session.model.dispose();
  }
}

export async function queueCommand(args: ParsedArgs): Promise<void> {
  const [sub, ...sources] = args.positionals;
  const redis = need(args, 'redis');
  const queueName = args.flags.get('queue') ?? QUEUE_NAME;
  if (sub === 'add') {
    const model = need(args, 'model');
    const out = need(args, 'out');
    if (!sources.length) throw new Error(`'queue add' needs at least one SOURCE`);
    checkNotInputs([out], sources);
    checkWritableFolder(out);
    const r = await addJobs({ redis, model, configHash: configHash(locateModel(model).config), out, sources, keep: keepOf(args), batchSize: positiveInt(args, 'batch-size', 8), exifRotate: args.switches.has('exif-rotate'), queueName });
    if (!quiet(args)) say(`queued ${r.added.length} source(s)${r.existing.length ? `, ${r.existing.length} already queued or done` : ''}${r.retried.length ? `, ${r.retried.length} failed before and retried` : ''} on ${queueName}`);
    return;
  }
  if (sub === 'status') {
    if (sources.length) throw new Error(`'queue status' takes no SOURCE`);
    console.log(formatStatus(await queueStatus(redis, queueName)));
    return;
  }
  throw new Error(`'queue' takes 'add' or 'status' (got ${sub === undefined ? 'nothing' : `'${sub}'`})`);
}

export async function workerCommand(args: ParsedArgs, load: ModelLoader = defaultLoader(args)): Promise<void> {
  const redis = need(args, 'redis');
  const queueName = args.flags.get('queue') ?? QUEUE_NAME;
  const name = `${hostname()}:${process.pid}`;
  const running = await startWorker({
    redis,
    load,
    concurrency: positiveInt(args, 'concurrency', 1),
    lockDuration: positiveInt(args, 'lock-duration', 30_000),
    queueName,
    name,
    log: quiet(args) ? undefined : say,
  });
  if (!quiet(args)) say(`${name}: waiting for jobs on ${queueName} (Ctrl-C: finish the current job and stop)`);
  let poll: NodeJS.Timeout | undefined;
  let queue: Queue | undefined;
  if (args.switches.has('until-empty')) {
    // Stops once nothing is waiting, running (a dead worker's job stays active until it is taken back) or delayed, twice in a row.
    queue = new Queue(queueName, { connection: connectionFor(redis) });
    queue.on('error', () => {}); // the worker reports the outage
    let emptyTimes = 0;
    const check = async () => {
      const c = await queue!.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      emptyTimes = Object.values(c).every((n) => !n) ? emptyTimes + 1 : 0;
      if (emptyTimes >= 2) void running.close();
      else poll = setTimeout(() => void check().catch(() => {}), 1000);
    };
    poll = setTimeout(() => void check().catch(() => {}), 1000);
  }
  try {
    await withStopSignals(
      () => {
        say(`${name}: stopping after the current job (again to quit at once) ...`);
        void running.close();
      },
      async () => {
        await running.closed;
        await running.close();
      },
    );
  } finally {
    clearTimeout(poll);
    await queue?.close();
  }
}
