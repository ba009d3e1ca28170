// Soak: many encode + decode calls cycling batch sizes 1-4 on the tiny model, two programs kept
// per stage (so every call re-records one and frees the least recently used): the GPU memory
// held repeats exactly with the cycle, and the process's RSS stays flat after warm-up. RSS is
// read after a forced garbage collection: without one it climbs until V8 happens to collect the
// small JS wrappers that keep Dawn's native objects (bind groups, buffers) alive.
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Gpu } from '../src/core/gpu.js';
import { DualToken } from '../src/model/dualtoken.js';
import { createNodeGpu } from '../src/node/gpu.js';
import { openModelFiles } from '../src/node/load.js';
import { loadShaders } from '../src/node/shaders.js';
import { Golden, caseDir } from './helpers/golden.js';

const ITERATIONS = 72; // each an encode and a decode: 144 calls (a multiple of the 4-size cycle)
const WARM_UP = 30; // iterations (60 calls)
const WINDOW = 10; // iterations averaged at the start (after warm-up) and at the end
const RSS_GROWTH_LIMIT = 30e6;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let gpu: Gpu;
beforeAll(async () => {
  gpu = await createNodeGpu();
});
afterAll(() => gpu.destroy());

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

it(`${2 * ITERATIONS} calls cycling B=1..4 with eviction: GPU memory repeats with the cycle, RSS grows < ${RSS_GROWTH_LIMIT / 1e6} MB after warm-up`, async () => {
  const golden = await Golden.open('tiny');
  const image = (await golden.get('pixel_values')).data.subarray(0, 3 * 64 * 64) as Float32Array; // one image
  const files = await openModelFiles(join(caseDir('tiny'), 'model.safetensors'));
  const model = await DualToken.create(gpu, loadShaders(), files.config, files.source, { programsPerStage: 2 });
  const held: number[] = [];
  const rss: number[] = [];
  const start = performance.now();
  for (let i = 0; i < ITERATIONS; i++) {
    const B = 1 + (i % 4);
    const pixels = new Float32Array(B * image.length);
    for (let b = 0; b < B; b++) pixels.set(image, b * image.length);
    const enc = await model.encode(pixels, B);
    const dec = await model.decode(enc.pixelCodes, B);
    expect(dec.images.length).toBe(B);
    const m = model.memory();
    held.push(m.weights + m.packed + m.programs);
    gc();
    rss.push(process.memoryUsage().rss);
  }
  const seconds = (performance.now() - start) / 1000;
  const early = mean(rss.slice(WARM_UP, WARM_UP + WINDOW));
  const late = mean(rss.slice(-WINDOW));
  console.log(
    `soak: ${2 * ITERATIONS} calls in ${seconds.toFixed(1)} s; GPU memory held after B=1..4 ${held.slice(-4).map((b) => (b / 1e6).toFixed(2))} MB; ` +
      `RSS (after gc) ${(rss[0] / 1e6).toFixed(0)} MB after the first iteration, mean ${(early / 1e6).toFixed(0)} MB over calls ${2 * WARM_UP}-${2 * (WARM_UP + WINDOW)}, ` +
      `${(late / 1e6).toFixed(0)} MB over the last ${2 * WINDOW} calls (${late >= early ? '+' : ''}${((late - early) / 1e6).toFixed(1)} MB)`,
  );
  for (let i = 8; i < ITERATIONS; i++) expect(held[i], `GPU memory after iteration ${i} vs ${i - 4}`).toBe(held[i - 4]);
  expect(late - early).toBeLessThan(RSS_GROWTH_LIMIT);
  model.dispose();
  expect(model.memory()).toMatchObject({ weights: 0, packed: 0, programs: 0 });
}, 120_000);
