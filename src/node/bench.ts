// dualtoken bench: end-to-end encode and decode at a real configuration with synthetic weights
// of the real shapes (or a model folder): latency, images/s, GPU memory, FLOPs, per batch size.
import { parseConfig } from '../core/config.js';
import { formatTable, summarize } from '../core/profile.js';
import { modelFlops, type Program } from '../core/program.js';
import { DualToken } from '../model/dualtoken.js';
import { OFFICIAL_CONFIGS } from '../model/presets.js';
import { SyntheticSource } from '../model/synthetic.js';
import type { KernelChoice, Precision } from '../core/variants.js';
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
  imagesPerS: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

async function time(run: () => Promise<unknown>, reps: number): Promise<{ firstMs: number; ms: number[] }> {
  const t0 = performance.now();
  await run();
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
  return { stage, batch, gflop, dispatches: prog.dispatchCount, programMB: prog.allocatedBytes / 1e6, firstMs: t.firstMs, ms: t.ms, bestMs, medianMs: median(t.ms), imagesPerS: (1000 * batch) / bestMs };
}

export async function benchCommand(o: BenchOptions): Promise<void> {
  const files = o.model ? await openModelFiles(o.model) : undefined;
  const preset = OFFICIAL_CONFIGS[o.preset];
  if (!files && !preset) throw new Error(`--preset ${o.preset}: unknown (known: ${Object.keys(OFFICIAL_CONFIGS).join(', ')})`);
  const config = files?.config ?? parseConfig(preset, undefined, o.preset);
  const source = files?.source ?? new SyntheticSource(config);
  const gpu = await createNodeGpu({ adapter: o.adapter, silenceAdapterWarnings: true }); // the CLI's one adapter request
  console.log(`adapter: ${gpu.describe()}`);
  console.log(`model: ${o.model ?? `${o.preset} with synthetic weights of the real shapes`}`);
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
            `steady best ${r.bestMs.toFixed(1)} ms, median ${r.medianMs.toFixed(1)} ms = ${r.imagesPerS.toFixed(2)} images/s, ${(r.gflop / (r.bestMs / 1000)).toFixed(1)} GFLOP/s; activations ${r.programMB.toFixed(0)} MB`,
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
      writeFile(o.json, JSON.stringify({ adapter: gpu.describe(), date: new Date().toISOString(), model: o.model ?? o.preset, synthetic: !o.model, precision: o.precision ?? 'f32', kernels: model.kernelChoice(), weightsLoadedMB: loadedBytes / 1e6, heldMB, peakMB: mem.peak / 1e6, memoryMB: { weights: mem.weights / 1e6, packed: mem.packed / 1e6, programs: mem.programs / 1e6 }, results }, null, 1));
      console.log(`wrote ${o.json}`);
    }
  } finally {
    model.dispose();
    gpu.destroy();
  }
}
