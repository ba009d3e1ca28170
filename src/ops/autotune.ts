// Autotuning: every variant of every op (choice.ts) run on each op module's tune cases (one per
// shape class), each checked against the op's float64 reference on sampled outputs, at the case's
// tolerance (the variant's own where larger), before it is timed with GPU timestamps; the fastest
// valid one per (op, shape class) wins. The result is kept per
// adapter in an injected store (Node: a JSON file under ~/.cache/dualtoken, see
// src/node/autotune-cache.ts; a browser could use localStorage), so the core stays browser-safe.
//
// The same measuring (measureVariants, timeProgram) serves the kernel benchmark (bench/kernels.ts)
// at the real sizes.
import { median } from '../core/arith.js';
import type { Gpu } from '../core/gpu.js';
import type { KernelLibrary } from '../core/kernels.js';
import { Program } from '../core/program.js';
import { OP_NAMES, VARIANTS, isFullPrecision, shapeClass, variantsForClass, variantsOf, type OpName, type Precision, type TunedTable } from './choice.js';
import { OP_CASES } from './index.js';
import type { Tensor } from '../core/tensor.js';
import type { OpCase, PreparedCase } from './types.js';

/** Where autotune results live between runs, keyed by adapter (see adapterKey). */
export interface TuneStorage {
  load(adapter: string): Promise<TunedTable | undefined>;
  save(adapter: string, table: TunedTable): Promise<void>;
}

/**
 * The adapter as the tuning cache knows it: results never carry over to another adapter or driver
 * version, nor from precision 'f16' (where f16-weight variants may win) to 'f32'.
 */
export function adapterKey(gpu: Gpu, precision: Precision = 'f32'): string {
  const a = gpu.adapter;
  const key = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' | ') || 'unknown adapter';
  return precision === 'f32' ? key : `${key} | precision ${precision}`;
}

// ---------------------------------------------------------------- measuring

export interface VariantResult {
  variant: string;
  status: 'ok' | 'failed' | 'error';
  /** Sampled error relative to the largest reference value (checked before any timing). */
  err?: number;
  samples?: number;
  tolerance: number;
  /** Wall time of the first run: pipeline compilation and weight packing included. */
  firstMs?: number;
  /** GPU time of each steady run (sum over the op's dispatches). */
  timesMs: number[];
  bestMs?: number;
  medianMs?: number;
  error?: string;
}

export interface MeasureOptions {
  /** Steady repetitions per variant (taken in turns across variants). */
  reps?: number;
  /** Per-variant tolerance; default variantTolerance. */
  tolerance?: (variant: string) => number;
  log?: (line: string) => void;
}

/** The bound a variant is held to on case `c`: the case's, or the variant's own where that is larger (reduced precision). */
export function variantTolerance(c: OpCase, variant: string): number {
  return Math.max(c.tolerance, VARIANTS[c.op].find((v) => v.name === variant)?.tolerance ?? 0);
}

/** GPU milliseconds of one whole run of `prog` (timestamp queries, else wall clock per dispatch). */
export async function timeProgram(prog: Program): Promise<number> {
  const { timings } = await prog.profile();
  return timings.reduce((s, t) => s + t.ms, 0);
}

/**
 * Records case `c` with `r.variant` forced into a new program, runs it once (pipelines compile,
 * weights pack) and checks the output against the reference: fills r's firstMs, err, samples
 * and status ('failed' over r.tolerance, 'error' if recording or running threw). Returns the
 * program and its pinned output to time, or undefined (the program destroyed) when not 'ok'.
 */
export async function firstRun(kernels: KernelLibrary, c: OpCase, prepared: PreparedCase, r: VariantResult, label: string, log?: (line: string) => void): Promise<{ prog: Program; out: Tensor } | undefined> {
  const choice = variantsOf(kernels);
  const prog = new Program(kernels, label);
  try {
    choice.force(c.op, r.variant);
    const out = prepared.record(prog);
    choice.force(c.op, undefined);
    out.pinned = true; // read after the runs: a buffer of its own
    const start = performance.now();
    const [buf] = await prog.run([out]);
    r.firstMs = performance.now() - start;
    const { err, samples } = prepared.check(buf);
    r.err = err;
    r.samples = samples;
    if (!(err <= r.tolerance)) r.status = 'failed';
    log?.(`${label}: first run ${r.firstMs.toFixed(0)} ms, error ${err.toExponential(2)} on ${samples} samples${r.status === 'failed' ? ` > ${r.tolerance}: FAILED, not timed` : ''}`);
    if (r.status === 'ok') return { prog, out };
  } catch (e) {
    choice.force(c.op, undefined);
    r.status = 'error';
    r.error = (e as Error).message;
    log?.(`${label}: ${r.error}`);
  }
  prog.destroy();
  return undefined;
}

/**
 * Runs `c` with each variant: first run (compiling), check against the reference, then `reps`
 * steady timings taken in turns (variant A, B, C, A, B, C, ...) so that load changes on a shared
 * machine hit every variant alike. A variant whose check fails is not timed.
 */
export async function measureVariants(kernels: KernelLibrary, c: OpCase, variants: string[], opts: MeasureOptions = {}): Promise<VariantResult[]> {
  const prepared = c.prepare(kernels.gpu);
  const live: { r: VariantResult; prog: Program }[] = [];
  const results: VariantResult[] = [];
  try {
    for (const variant of variants) {
      const tolerance = opts.tolerance?.(variant) ?? variantTolerance(c, variant);
      const r: VariantResult = { variant, status: 'ok', tolerance, timesMs: [] };
      results.push(r);
      const ran = await firstRun(kernels, c, prepared, r, `${c.title} [${variant}]`, opts.log);
      if (ran) live.push({ r, prog: ran.prog });
    }
    for (let rep = 0; rep < (opts.reps ?? 3); rep++) {
      for (const { r, prog } of live) r.timesMs.push(await timeProgram(prog));
    }
    for (const { r } of live) {
      r.bestMs = Math.min(...r.timesMs);
      r.medianMs = median(r.timesMs);
    }
  } finally {
    for (const { prog } of live) prog.destroy();
    prepared.destroy();
  }
  return results;
}

/** Rate (GFLOP/s or GB/s) of `work` done in `ms`. */
export function rate(work: number, ms: number | undefined): number | undefined {
  return ms ? work / ms / 1e6 : undefined;
}

// ---------------------------------------------------------------- autotune

export interface AutotuneOptions {
  storage?: TuneStorage;
  /** Re-measure even when the storage has a result for this adapter. */
  force?: boolean;
  ops?: OpName[];
  reps?: number;
  log?: (line: string) => void;
}

/** Installs the stored autotune result for this adapter, if any (no measuring); returns it. */
export async function loadTuned(kernels: KernelLibrary, storage: TuneStorage): Promise<TunedTable | undefined> {
  const stored = await storage.load(adapterKey(kernels.gpu, variantsOf(kernels).precision));
  if (stored) variantsOf(kernels).setTuned(stored);
  return stored;
}

/**
 * Picks the fastest valid variant per (op, shape class) for this adapter, installs the result in
 * the library's variant choice and saves it. With a stored result for this adapter (and no
 * `force`), uses that without measuring. Reduced-precision variants (f16 weights) compete only
 * when the library's precision is 'f16' (KernelVariants.setPrecision).
 */
export async function autotune(kernels: KernelLibrary, opts: AutotuneOptions = {}): Promise<TunedTable> {
  const choice = variantsOf(kernels);
  const key = adapterKey(kernels.gpu, choice.precision);
  if (opts.storage && !opts.force) {
    const stored = await opts.storage.load(key);
    if (stored) {
      choice.setTuned(stored);
      opts.log?.(`autotune: using the stored choice for ${key}`);
      return stored;
    }
  }
  const ops = opts.ops ?? [...OP_NAMES];
  const table: TunedTable = {};
  for (const c of ops.flatMap((op) => OP_CASES[op].tune())) {
    const op = c.op;
    const cls = shapeClass(op, c.dims);
    const variants = variantsForClass(kernels.gpu, op, cls).filter((v) => choice.precision === 'f16' || isFullPrecision(op, v));
    const results = await measureVariants(kernels, c, variants, { reps: opts.reps ?? 3, log: opts.log });
    const valid = results.filter((r) => r.status === 'ok' && r.medianMs !== undefined);
    if (!valid.length) continue;
    const best = valid.reduce((a, b) => (b.medianMs! < a.medianMs! ? b : a));
    table[`${op}/${cls}`] = best.variant;
    opts.log?.(`autotune: ${op}/${cls}: ${best.variant} (${results.map((r) => `${r.variant} ${r.medianMs?.toFixed(1) ?? r.status} ms`).join(', ')})`);
  }
  choice.setTuned(table);
  await opts.storage?.save(key, table);
  return table;
}
