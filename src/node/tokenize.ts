// Tokenizing datasets: every image of each SOURCE (a folder, a list file or a WebDataset tar
// shard; src/node/sources.ts) through the encoder, into one token shard per source:
//   OUTDIR/<name>.tokens.safetensors: int32 code_pix [N,h,w,D], int32 code_sem [N,h,w,D]
//   (and f32 pooler_output [N,C] with keep 'pooler'); __metadata__: keys (JSON list of the N
//   image keys, in order), failed (JSON [{key, reason}]), config_hash, keep, source, format.
//   OUTDIR/manifest.json: one entry per shard in OUTDIR.
// Images are read and decoded one batch ahead of the GPU (memory: two batches of pixels plus the
// codes). A shard is written only when its source is done, under a temporary name renamed into
// place (src/node/output.ts): a shard at its final name is always complete, and a second writer
// of the same shard (two queue workers) renames a complete file too. A rerun skips the sources
// whose shard is complete for the same config hash and `keep`, and redoes the others.
// `shouldStop` (SIGINT) is checked after each batch: the run stops there, writing nothing partial.
// Temporary files a killed writer left (older than STALE_TEMP_MS) are removed when the shard is redone.
import { basename, join, resolve } from 'node:path';
import type { RgbImage } from '../core/image.js';
import { encodeSafetensors, type TensorToWrite } from '../core/safetensors.js';
import type { DualToken, EncodeResult } from '../model/dualtoken.js';
import { DeviceLossRetry, GaveUp, batchOrEach } from './batches.js';
import { decodeImage } from './decode.js';
import { oneLine } from './messages.js';
import { writeFile } from './output.js';
import { formatSeconds } from './progress.js';
import { MANIFEST, SHARD_FORMAT, configHash, keepText, readShardMetadata, removeStaleTemps, shardIsComplete, shardPath, writeManifest, type KeepOutput, type ShardFailure } from './shards.js';
import { openSources, type Source } from './sources.js';

/** A model and, optionally, what replaces it when its device is lost (the CLI's session). */
export type ModelHandle = DualToken | { model: DualToken; retry?: DeviceLossRetry };

export interface TokenizeProgress {
  /** Images dealt with (encoded or failed) in this run, over every source. */
  images: number;
  /** Images of the sources this run works on (known once each source has been counted). */
  totalImages: number;
  shardsDone: number;
  shardsTotal: number;
  failures: number;
  imagesPerSecond: number;
  /** Seconds left at the current rate; undefined before the first batch. */
  eta?: number;
  /** The source being worked on. */
  source?: string;
}

export interface TokenizeOptions {
  /** Images per GPU batch (8). */
  batchSize?: number;
  keep?: KeepOutput[];
  exifRotate?: boolean;
  /** Checked after every batch; true stops the run there (the source in progress is not written). */
  shouldStop?: () => boolean;
  onProgress?: (p: TokenizeProgress) => void;
  /** Called once per source: skipped (complete) or written. */
  onShard?: (r: ShardResult) => void;
  /** Rewrite OUTDIR/manifest.json after each shard (true). */
  manifest?: boolean;
}

export interface ShardResult {
  source: string;
  shard: string;
  images: number;
  failures: ShardFailure[];
  /** Already complete for this config: not redone. */
  skipped: boolean;
  seconds: number;
}

export interface TokenizeSummary {
  shards: ShardResult[];
  /** Sources that could not be tokenized at all (unreadable folder, corrupt tar): no shard written. */
  errors: { source: string; message: string }[];
  images: number;
  failures: number;
  seconds: number;
  imagesPerSecond: number;
  /**
   * Time spent reading and decoding images, and waiting for the GPU's batches: the two overlap
   * (the next batch is decoded while the GPU runs this one), so their sum minus `seconds` is what
   * the overlap saved.
   */
  decodeSeconds: number;
  gpuSeconds: number;
}

/** The run was stopped (shouldStop) between two batches; the shards written so far are complete. */
export class Interrupted extends Error {}

const unwrap = (m: ModelHandle): { model: () => DualToken; retry: DeviceLossRetry } => {
  if ('encodeImages' in m) return { model: () => m, retry: new DeviceLossRetry(() => Promise.reject(new Error('no reload configured'))) };
  const retry = m.retry ?? new DeviceLossRetry(() => Promise.reject(new Error('no reload configured')));
  return { model: () => m.model, retry };
};

interface Decoded {
  keys: string[];
  images: RgbImage[];
}

/** Encoded batches -> one array per output. */
function concat<T extends Int32Array | Float32Array>(parts: T[], make: (n: number) => T): T {
  const out = make(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Counts shared over a run's sources, for progress. */
interface RunState {
  start: number;
  images: number;
  totalImages: number;
  shardsDone: number;
  shardsTotal: number;
  failures: number;
  /** Wall time spent reading + decoding, and waiting for the GPU's batches (they overlap). */
  decodeMs: number;
  gpuMs: number;
}

/** Milliseconds `fn` takes, added to `state[field]`. */
async function timed<T>(state: RunState, field: 'decodeMs' | 'gpuMs', fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    state[field] += performance.now() - t0;
  }
}

function progressOf(state: RunState, source?: string): TokenizeProgress {
  const seconds = (performance.now() - state.start) / 1000;
  const rate = seconds > 0 ? state.images / seconds : 0;
  return {
    images: state.images,
    totalImages: state.totalImages,
    shardsDone: state.shardsDone,
    shardsTotal: state.shardsTotal,
    failures: state.failures,
    imagesPerSecond: rate,
    eta: rate > 0 && state.images > 0 ? Math.max(0, state.totalImages - state.images) / rate : undefined,
    source,
  };
}

/**
 * One source into its shard (or nothing, when its shard is complete for this config). The
 * building block of tokenize() and of the queue worker.
 */
export async function tokenizeSource(handle: ModelHandle, source: Source, outDir: string, opts: TokenizeOptions = {}, state?: RunState): Promise<ShardResult> {
  const { model, retry } = unwrap(handle);
  const keep = opts.keep ?? [];
  const hash = configHash(model().config);
  const shard = shardPath(outDir, source.name);
  const start = performance.now();
  const run: RunState = state ?? { start, images: 0, totalImages: 0, shardsDone: 0, shardsTotal: 1, failures: 0, decodeMs: 0, gpuMs: 0 };
  if (shardIsComplete(shard, hash, keep)) {
    const meta = readShardMetadata(shard)!;
    const r: ShardResult = { source: source.path, shard, images: (JSON.parse(meta.keys) as string[]).length, failures: JSON.parse(meta.failed) as ShardFailure[], skipped: true, seconds: 0 };
    run.shardsDone++;
    opts.onShard?.(r);
    return r;
  }
  removeStaleTemps(outDir, [basename(shard), MANIFEST]);
  if (!state) run.totalImages = await source.count();
  const size = opts.batchSize ?? 8;
  const keys: string[] = [];
  const failures: ShardFailure[] = [];
  const pix: Int32Array[] = [];
  const sem: Int32Array[] = [];
  const pooler: Float32Array[] = [];
  const fail = (key: string, e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    failures.push({ key, reason: oneLine(message.startsWith(`${key}: `) ? message.slice(key.length + 2) : message) });
    run.failures++;
  };
  const take = (batchKeys: string[], r: EncodeResult) => {
    keys.push(...batchKeys);
    pix.push(r.pixelCodes);
    sem.push(r.semanticCodes);
    if (keep.includes('pooler')) pooler.push(r.embedding);
  };
  /** The batch, or when it fails, its images one by one (one bad image does not take the others down). */
  const runBatch = (d: Decoded) =>
    batchOrEach(
      d.images,
      (images) => model().encodeImages(images),
      retry,
      (positions, r) => take(positions.map((p) => d.keys[p]), r),
      (p, e) => fail(d.keys[p], e),
    );

  const items = source.items()[Symbol.asyncIterator]();
  let exhausted = false;
  /** The next `size` images that can be read and decoded (failures kept), and how many items were dealt with. */
  const nextBatch = async (): Promise<{ decoded: Decoded; seen: number }> => {
    const d: Decoded = { keys: [], images: [] };
    let seen = 0;
    while (!exhausted && seen < size) {
      const it = await items.next();
      if (it.done) {
        exhausted = true;
        break;
      }
      seen++;
      try {
        const bytes = await it.value.read();
        d.images.push(decodeImage(bytes, it.value.key, { exifRotate: opts.exifRotate }));
        d.keys.push(it.value.key);
      } catch (e) {
        fail(it.value.key, e);
      }
    }
    return { decoded: d, seen };
  };

  try {
    let next = await timed(run, 'decodeMs', nextBatch);
    while (next.seen > 0) {
      const batch = next.decoded;
      const running = batch.images.length ? timed(run, 'gpuMs', () => runBatch(batch)) : Promise.resolve();
      // Read and decoded while the GPU works on the batch above.
      const following = timed(run, 'decodeMs', nextBatch);
      await running;
      const after = await following;
      run.images += next.seen;
      opts.onProgress?.(progressOf(run, source.path));
      if (after.seen > 0 && opts.shouldStop?.()) throw new Interrupted(`stopped after ${run.images} images; ${source.path} was not finished (its shard is not written)`);
      next = after;
    }
  } finally {
    await items.return?.();
  }

  const m = model();
  const [h, w, D] = m.config.quantPix.codeShape;
  const [hs, ws, Ds] = m.config.quantSem.codeShape;
  const n = keys.length;
  const tensors: Record<string, TensorToWrite> = {
    code_pix: { dtype: 'I32', shape: [n, h, w, D], data: concat(pix, (k) => new Int32Array(k)) },
    code_sem: { dtype: 'I32', shape: [n, hs, ws, Ds], data: concat(sem, (k) => new Int32Array(k)) },
  };
  if (keep.includes('pooler')) {
    const data = concat(pooler, (k) => new Float32Array(k));
    tensors.pooler_output = { dtype: 'F32', shape: [n, n ? data.length / n : m.config.vision.hiddenSize], data };
  }
  const metadata = {
    format: SHARD_FORMAT,
    source: resolve(source.path),
    keys: JSON.stringify(keys),
    failed: JSON.stringify(failures),
    config_hash: hash,
    keep: keepText(keep),
  };
  writeFile(shard, encodeSafetensors(tensors, metadata));
  run.shardsDone++;
  const r: ShardResult = { source: source.path, shard, images: n, failures, skipped: false, seconds: (performance.now() - start) / 1000 };
  opts.onShard?.(r);
  return r;
}

/**
 * Every source into its shard in `outDir`, then OUTDIR/manifest.json. Sources whose shard is
 * complete for this config are skipped. Throws Interrupted when `shouldStop` said so.
 */
export async function tokenize(model: ModelHandle, sources: (string | Source)[], outDir: string, opts: TokenizeOptions = {}): Promise<TokenizeSummary> {
  const opened = openSources(sources.filter((s): s is string => typeof s === 'string'));
  const all = sources.map((s) => (typeof s === 'string' ? opened.shift()! : s));
  const state: RunState = { start: performance.now(), images: 0, totalImages: 0, shardsDone: 0, shardsTotal: all.length, failures: 0, decodeMs: 0, gpuMs: 0 };
  const m = unwrap(model).model();
  const hash = configHash(m.config);
  const keep = opts.keep ?? [];
  // Count what is left to do (skipped shards count as done), for the ETA.
  for (const s of all) if (!shardIsComplete(shardPath(outDir, s.name), hash, keep)) state.totalImages += await s.count();
  const shards: ShardResult[] = [];
  const errors: { source: string; message: string }[] = [];
  for (const [i, s] of all.entries()) {
    if (opts.shouldStop?.()) throw new Interrupted(`stopped after ${state.images} images; ${all.length - i} source(s) not started`);
    try {
      shards.push(await tokenizeSource(model, s, outDir, opts, state));
    } catch (e) {
      if (e instanceof Interrupted || e instanceof GaveUp || !(e instanceof Error)) throw e;
      errors.push({ source: s.path, message: oneLine(e.message) });
      state.shardsTotal--;
      continue;
    }
    if (opts.manifest !== false) writeManifest(outDir);
  }
  if (opts.manifest !== false && !all.length) writeManifest(outDir);
  const seconds = (performance.now() - state.start) / 1000;
  const done = shards.filter((s) => !s.skipped);
  const images = done.reduce((a, s) => a + s.images, 0);
  return { shards, errors, images, failures: done.reduce((a, s) => a + s.failures.length, 0), seconds, imagesPerSecond: seconds > 0 ? state.images / seconds : 0, decodeSeconds: state.decodeMs / 1000, gpuSeconds: state.gpuMs / 1000 };
}

/** One progress line: images/s, shards done/total, ETA, failures. */
export function formatProgress(p: TokenizeProgress): string {
  const eta = p.eta === undefined ? '' : `, ETA ${formatSeconds(p.eta)}`;
  return `tokenize: ${p.images}/${p.totalImages} images, ${p.imagesPerSecond.toFixed(1)} images/s, shards ${p.shardsDone}/${p.shardsTotal}${eta}, ${p.failures} failed`;
}

/** The final summary line. */
export function formatSummary(s: TokenizeSummary, outDir: string): string {
  const skipped = s.shards.filter((r) => r.skipped).length;
  return `tokenized ${s.images} images into ${s.shards.length - skipped} shard(s)${skipped ? ` (${skipped} already complete, skipped)` : ''} in ${formatSeconds(s.seconds)}, ${s.imagesPerSecond.toFixed(1)} images/s (decode ${formatSeconds(s.decodeSeconds)} and GPU ${formatSeconds(s.gpuSeconds)} overlapped), ${s.failures} failed${s.errors.length ? `, ${s.errors.length} source(s) could not be read` : ''} -> ${join(outDir, MANIFEST)}`;
}
