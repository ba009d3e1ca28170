// dualtoken bench: end-to-end encode and decode at a real configuration with synthetic weights
// of the real shapes (or a model folder): latency, images/s, GPU memory, FLOPs, per batch size.
// With --text, first a text row: the SigLIP text tower alone (its own kernels and weights; the
// image model is loaded after it is freed) on T prompts of L = max_position_embeddings ids,
// in chunks of TEXT_CHUNK prompts (text-model.ts), so its GPU memory does not grow with T.
import { median } from '../core/arith.js';
import { parseConfig, parseTextConfig, type DualTokenConfig } from '../core/config.js';
import type { Gpu } from '../core/gpu.js';
import { KernelLibrary } from '../core/kernels.js';
import type { TensorSource } from '../core/tensor-source.js';
import { variantsOf } from '../ops/choice.js';
import { formatTable, summarize } from '../core/profile.js';
import { modelFlops, type Program } from '../core/program.js';
import { DualToken } from '../model/dualtoken.js';
import { OFFICIAL_CONFIGS, OFFICIAL_TEXT_CONFIGS } from '../model/presets.js';
import { TEXT_CHUNK, TextTower } from '../model/text-model.js';
import { SyntheticSource } from '../model/synthetic.js';
import type { KernelChoice, Precision } from '../ops/choice.js';
import { fileTuneStorage } from './autotune-cache.js';
import { createNodeGpu } from './gpu.js';
import { writeFile } from './io.js';
import { openModelFiles } from './load.js';
import { loadShaders } from './shaders.js';

export interface BenchOptions {
  model?: string;
  preset: string;
  batches: number[];
  reps: number;
  json?: string;
  profile: boolean;
  adapter?: string;
  kernels?: KernelChoice;
  precision?: Precision;
  autotune?: boolean;
  log?: (line: string) => void;
  /** Adds the text row (the text tower on `textPrompts` prompts). */
  text?: boolean;
  /** T for the text row (default 1000). */
  textPrompts?: number;
  /** Only the text row (no image model loaded). */
  textOnly?: boolean;
}

interface TextResult {
  stage: 'text';
  /** T prompts of L ids each. */
  prompts: number;
  length: number;
  chunk: number;
  /** Model FLOPs of one full-chunk program, times the chunks run. */
  gflop: number;
  /** Wall time of the first chunk alone (its pipelines compile there). */
  firstMs: number;
  ms: number[];
  bestMs: number;
  medianMs: number;
  /** T over the median run. */
  promptsPerS: number;
  /** TextTower.byteLength at the end: weights + packed + programs (two kept) + inputs. */
  heldMB: number;
  /** TextTower.byteLength once loaded, before any program (the uploaded weights). */
  weightsMB: number;
  /** heldMB - weightsMB: packed weight layouts less the originals they replaced (negative with f16 halves) + recorded programs with their inputs. */
  sinceLoadMB: number;
  /** Largest TextTower.byteLength seen (after each chunk's program is recorded). */
  peakMB: number;
}

interface StageResult {
  stage: 'encode' | 'decode';
  batch: number;
  /** The model's FLOPs (a Winograd conv counted as the direct convolution it computes). */
  gflop: number;
  dispatches: number;
  programMB: number;
  firstMs: number;
  ms: number[];
  bestMs: number;
  medianMs: number;
  /** B over the median run. */
  imagesPerS: number;
}


function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

/** '3 runs, 26.3..31.0 ms': the steady runs' count and spread. */
function spread(ms: number[]): string {
  return `${ms.length} run${ms.length === 1 ? '' : 's'}, ${Math.min(...ms).toFixed(1)}..${Math.max(...ms).toFixed(1)} ms`;
}

/** `first` timed once (where the pipelines compile; by default one `run`), then `run` `reps` times. */
async function time(run: () => Promise<unknown>, reps: number, first = run): Promise<{ firstMs: number; ms: number[] }> {
  const t0 = performance.now();
  await first();
  const firstMs = performance.now() - t0;
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await run();
    ms.push(performance.now() - t);
  }
  return { firstMs, ms };
}

function result(stage: StageResult['stage'], batch: number, prog: Program, t: { firstMs: number; ms: number[] }): StageResult {
  const gflop = prog.costs().reduce((s, c) => s + modelFlops(c), 0) / 1e9;
  const bestMs = Math.min(...t.ms);
  const medianMs = median(t.ms);
  return { stage, batch, gflop, dispatches: prog.dispatchCount, programMB: prog.allocatedBytes / 1e6, firstMs: t.firstMs, ms: t.ms, bestMs, medianMs, imagesPerS: (1000 * batch) / medianMs };
}

/** Random ids in [3, vocab) with a pad tail, [T, L] (deterministic). */
function randomIds(T: number, L: number, vocab: number, pad: number): Int32Array {
  const ids = new Int32Array(T * L);
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  for (let t = 0; t < T; t++) {
    const n = 4 + (next() % (L - 4)); // 4..L-1 content ids, then pads
    for (let i = 0; i < L; i++) ids[t * L + i] = i < n ? 3 + (next() % (vocab - 3)) : pad;
  }
  return ids;
}

/** The text row: a TextTower of its own on the source, T prompts in chunks, timed and measured. */
async function benchText(gpu: Gpu, config: DualTokenConfig, source: TensorSource, o: BenchOptions): Promise<TextResult> {
  const cfg = config.text!;
  const T = o.textPrompts ?? 1000;
  const L = cfg.maxPositionEmbeddings;
  const kernels = new KernelLibrary(gpu, loadShaders());
  variantsOf(kernels).setPrecision(o.precision ?? 'f32');
  variantsOf(kernels).override(o.kernels ?? {});
  let peak = 0;
  const tower: TextTower = new TextTower({ gpu, kernels, config, openSource: async () => ({ source, owned: false }), onNewProgram: () => (peak = Math.max(peak, tower.byteLength)) });
  const MB = (b: number) => b / 1e6;
  try {
    const t0 = performance.now();
    await tower.load();
    const weightsBytes = tower.byteLength;
    peak = Math.max(peak, weightsBytes);
    console.log(
      `text tower: hidden ${cfg.hiddenSize}, ${cfg.numLayers} layers, ${cfg.numHeads} heads, intermediate ${cfg.intermediateSize}, vocab ${cfg.vocabSize}, L ${L}; ` +
        `weights ${MB(tower.byteLength).toFixed(0)} MB on the GPU (token table gathered on the host), loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    const ids = randomIds(T, L, cfg.vocabSize, cfg.padTokenId ?? 0);
    // Chunks as encode() runs them, without its per-id-set cache (every rep recomputes).
    const run = async () => {
      for (let t0 = 0; t0 < T; t0 += TEXT_CHUNK) {
        const n = Math.min(TEXT_CHUNK, T - t0);
        await tower.run(ids.subarray(t0 * L, (t0 + n) * L), n);
        peak = Math.max(peak, tower.byteLength);
      }
    };
    // The first timed call runs one chunk (the pipelines compile there); the reps run all T.
    const t = await time(run, o.reps, () => tower.run(ids.subarray(0, Math.min(TEXT_CHUNK, T) * L), Math.min(TEXT_CHUNK, T)));
    const full = tower.program(Math.min(TEXT_CHUNK, T));
    const chunkGflop = full.costs().reduce((s, c) => s + modelFlops(c), 0) / 1e9;
    const gflop = (chunkGflop * T) / Math.min(TEXT_CHUNK, T);
    const bestMs = Math.min(...t.ms);
    const held = tower.byteLength;
    const r: TextResult = {
      stage: 'text',
      prompts: T,
      length: L,
      chunk: TEXT_CHUNK,
      gflop,
      firstMs: t.firstMs,
      ms: t.ms,
      bestMs,
      medianMs: median(t.ms),
      promptsPerS: (1000 * T) / median(t.ms),
      heldMB: MB(held),
      weightsMB: MB(weightsBytes),
      sinceLoadMB: MB(held - weightsBytes),
      peakMB: MB(Math.max(peak, held)),
    };
    return r;
  } finally {
    tower.dispose();
  }
}

export async function benchCommand(o: BenchOptions): Promise<void> {
  const files = o.model ? await openModelFiles(o.model) : undefined;
  const preset = OFFICIAL_CONFIGS[o.preset];
  if (!files && !preset) throw new Error(`--preset ${o.preset}: unknown (known: ${Object.keys(OFFICIAL_CONFIGS).join(', ')})`);
  const config = files?.config ?? parseConfig(preset, undefined, o.preset);
  const wantText = o.text || o.textOnly || o.textPrompts !== undefined;
  if (wantText && !config.text) {
    const preTextConfig = OFFICIAL_TEXT_CONFIGS[o.preset];
    if (files || !preTextConfig) throw new Error(`bench --text: ${o.model ?? o.preset} has no text_config (siglip_config.json with a text_config is needed beside config.json)`);
    config.text = parseTextConfig(preTextConfig, `preset ${o.preset}`);
  }
  if (o.textPrompts !== undefined && !(Number.isInteger(o.textPrompts) && o.textPrompts >= 1)) throw new Error(`--text-prompts ${o.textPrompts}: expected a positive integer`);
  const source = files?.source ?? new SyntheticSource(config);
  const gpu = await createNodeGpu({ adapter: o.adapter, silenceAdapterWarnings: true }); // the CLI's one adapter request
  console.log(`adapter: ${gpu.describe()}`);
  console.log(`model: ${o.model ?? `${o.preset} with synthetic weights of the real shapes`}`);
  let textResult: TextResult | undefined;
  if (wantText) {
    try {
      textResult = await benchText(gpu, config, source, o);
    } catch (e) {
      gpu.destroy();
      throw e;
    }
    const r = textResult;
    console.log(
      `text T=${r.prompts} x L=${r.length} (chunks of ${r.chunk}): ${r.gflop.toFixed(1)} GFLOP (model); first chunk ${r.firstMs.toFixed(0)} ms (compiles); ` +
        `steady median ${r.medianMs.toFixed(1)} ms of ${spread(r.ms)} = ${r.promptsPerS.toFixed(2)} prompts/s, ${(r.gflop / (r.medianMs / 1000)).toFixed(1)} GFLOP/s`,
    );
    console.log(
      `text tower GPU memory: held ${r.heldMB.toFixed(0)} MB at the end (weights ${r.weightsMB.toFixed(0)} MB as uploaded, ${r.sinceLoadMB >= 0 ? '+' : ''}${r.sinceLoadMB.toFixed(0)} MB since: ` +
        `packed layouts less the originals they replaced, and the two kept programs); peak ${r.peakMB.toFixed(0)} MB (independent of T: chunks of ${r.chunk})`,
    );
    if (o.textOnly) {
      if (o.json) {
        writeFile(o.json, JSON.stringify({ adapter: gpu.describe(), date: new Date().toISOString(), model: o.model ?? o.preset, synthetic: !o.model, precision: o.precision ?? 'f32', text: textResult, results: [] }, null, 1));
        console.log(`wrote ${o.json}`);
      }
      gpu.destroy();
      return;
    }
  }
  const t0 = performance.now();
  const model = await DualToken.create(gpu, loadShaders(), config, source, { kernels: o.kernels, precision: o.precision, autotune: o.autotune, tuneStorage: fileTuneStorage(), log: o.log });
  console.log(`kernels: ${Object.entries(model.kernelChoice()).map(([op, v]) => `${op} ${v}`).join('; ')}`);
  const loadedBytes = model.weights.byteLength;
  console.log(`weights: ${(loadedBytes / 1e6).toFixed(0)} MB on the GPU, loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const v = config.vision;
  const [h, w, D] = config.quantPix.codeShape;
  const results: StageResult[] = [];
  try {
    for (const B of o.batches) {
      const pixels = random(B * v.numChannels * v.imageSize * v.imageSize, 7 + B);
      const enc = model.encoderProgram(B);
      results.push(result('encode', B, enc, await time(() => model.encode(pixels, B), o.reps)));
      const codes = Int32Array.from(random(B * h * w * D, 11 + B), (x) => Math.floor(((x + 1) / 2) * config.quantPix.nEmbed) % config.quantPix.nEmbed);
      const dec = model.decoderProgram(B);
      results.push(result('decode', B, dec, await time(() => model.decode(codes, B), o.reps)));
      for (const r of results.slice(-2)) {
        console.log(
          `${r.stage} B=${B}: ${r.gflop.toFixed(1)} GFLOP (model) in ${r.dispatches} dispatches; first run ${r.firstMs.toFixed(0)} ms (compiles); ` +
            `steady median ${r.medianMs.toFixed(1)} ms of ${spread(r.ms)} = ${r.imagesPerS.toFixed(2)} images/s, ${(r.gflop / (r.medianMs / 1000)).toFixed(1)} GFLOP/s; activations ${r.programMB.toFixed(0)} MB`,
        );
      }
      if (o.profile) {
        for (const prog of [enc, dec]) {
          const p = await prog.profile();
          console.log(`\n${prog.label} (${p.source}):\n${formatTable(summarize(p.timings))}\n`);
        }
      }
    }
    const mem = model.memory();
    const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
    const heldMB = (mem.weights + mem.packed + mem.programs) / 1e6;
    console.log(
      `GPU memory held at the end: ${heldMB.toFixed(0)} MB = weights ${mb(mem.weights)} (${mb(loadedBytes - mem.weights)} of the loaded ${mb(loadedBytes)} freed once packed) + packed layouts ${mb(mem.packed)} + programs ${mb(mem.programs)}; peak ${mb(mem.peak)}`,
    );
    if (o.json) {
      writeFile(o.json, JSON.stringify({ adapter: gpu.describe(), date: new Date().toISOString(), model: o.model ?? o.preset, synthetic: !o.model, precision: o.precision ?? 'f32', kernels: model.kernelChoice(), ...(textResult ? { text: textResult } : {}), weightsLoadedMB: loadedBytes / 1e6, heldMB, peakMB: mem.peak / 1e6, memoryMB: { weights: mem.weights / 1e6, packed: mem.packed / 1e6, programs: mem.programs / 1e6 }, results }, null, 1));
      console.log(`wrote ${o.json}`);
    }
  } finally {
    model.dispose();
    gpu.destroy();
  }
}
