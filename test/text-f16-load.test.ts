// The text tower under precision 'f16' packs each linear weight to halves as it is uploaded and
// frees its f32 original before the next tensor (TextTower.loadNow): the load peaks at the f16
// total plus one f32 tensor, never at the f32 total. The packing is the one linear() makes at the
// first recording, so the outputs equal those of the f16 kernels on f32-loaded weights.
import { join } from 'node:path';
import { afterAll, beforeAll, describe as suite, expect, it } from 'vitest';
import type { Gpu } from '../src/core/gpu.js';
import { releasedWhy } from '../src/core/tensor.js';
import { DualToken } from '../src/model/dualtoken.js';
import { TEXT, isTextLinearWeight, usedByText } from '../src/model/text.js';
import { createNodeGpu } from '../src/node/gpu.js';
import { openModelFiles } from '../src/node/load.js';
import { loadShaders } from '../src/node/shaders.js';
import { Golden, caseDir, compareFloat } from './helpers/golden.js';

/** kn_sg_f16's tolerance (src/ops/linear/spec.ts). */
const F16_REL_TO_MAX = 2e-3;

let gpu: Gpu;
beforeAll(async () => {
  gpu = await createNodeGpu();
});
afterAll(() => gpu.destroy());

async function encodeTiny(precision: 'f32' | 'f16', kernels?: Record<string, string>) {
  const files = await openModelFiles(join(caseDir('tiny'), 'model.safetensors'));
  const model = await DualToken.create(gpu, loadShaders(), files.config, files.source, { precision, kernels });
  const golden = await Golden.open('tiny', 'text_expected.safetensors');
  const ids = await golden.get('input_ids');
  const tower = model.text();
  await tower.load();
  const loaded = tower.byteLength;
  const loadPeak = tower.peakByteLength; // sampled after each tensor's upload (and packing)
  const head = (tower as unknown as { weights: { get(n: string): { buffer: GPUBuffer } } }).weights.get(`${TEXT}.head.weight`);
  const headReleasedAtLoad = releasedWhy(head.buffer);
  const enc = await model.encodeText(new Int32Array(ids.data), ids.shape[0]);
  // Byte sizes of the text tensors as f32 (what Weights uploads) and of their linear weights.
  let f32Total = 0;
  let linearF32 = 0;
  let largestLinear = 0;
  for (const name of files.source.names().filter(usedByText)) {
    const bytes = Math.ceil((files.source.info(name)!.shape.reduce((a, b) => a * b, 1) * 4) / 16) * 16;
    f32Total += bytes;
    if (isTextLinearWeight(name)) {
      linearF32 += bytes;
      largestLinear = Math.max(largestLinear, bytes);
    }
  }
  const result = { raw: enc.textEmbedsRaw, expected: await golden.get('text_embeds_raw'), loaded, loadPeak, peak: tower.peakByteLength, held: tower.byteLength, f32Total, linearF32, largestLinear, headReleasedAtLoad };
  model.dispose();
  await files.source.close?.();
  return result;
}

suite('text tower load under precision f16', () => {
  it('isTextLinearWeight names exactly the linear weights (q, k, v, out_proj, fc1, fc2 of each layer, head)', async () => {
    const files = await openModelFiles(join(caseDir('tiny'), 'model.safetensors'));
    const linear = files.source.names().filter(isTextLinearWeight);
    await files.source.close?.();
    const layers = files.config.text!.numLayers;
    expect(linear.length).toBe(6 * layers + 1);
    expect(linear.every((n) => usedByText(n) && n.endsWith('.weight') && !n.includes('norm') && !n.includes('embedding'))).toBe(true);
  });

  it('packs each linear weight as it is uploaded: the peak is the f16 total plus one f32 tensor, not the f32 total; outputs match the golden at f16 tolerance', async () => {
    const r = await encodeTiny('f16');
    console.log(`tiny text f16: ${r.f32Total} bytes as f32 (linear ${r.linearF32}); held after load ${r.loaded}, load peak ${r.loadPeak}, peak ${r.peak}, held at the end ${r.held}`);
    expect(r.headReleasedAtLoad).toBeDefined(); // the f32 original is gone at load, only its halves are kept
    // After load: the non-linear tensors as f32 + the linear ones as halves (<= half their f32 bytes plus padding).
    expect(r.loaded).toBeLessThan(r.f32Total - r.linearF32 / 2 + r.linearF32 * 0.1);
    // The load peak: what is kept after load + one f32 linear weight being packed (never the f32 total).
    expect(r.loadPeak).toBeGreaterThan(r.loaded);
    expect(r.loadPeak).toBeLessThanOrEqual(r.loaded + r.largestLinear);
    expect(r.loadPeak).toBeLessThan(r.f32Total);
    const c = compareFloat('tiny f16 text_embeds_raw', r.raw, r.expected);
    expect(c.relToMax).toBeLessThanOrEqual(F16_REL_TO_MAX);
  });

  it('f32 keeps the f32 weights as loaded (its peak is the weights themselves)', async () => {
    const r = await encodeTiny('f32');
    console.log(`tiny text f32: ${r.f32Total} bytes as f32; held after load ${r.loaded}, load peak ${r.loadPeak}, peak ${r.peak}, held at the end ${r.held}`);
    expect(r.loaded).toBe(r.f32Total);
    expect(r.loadPeak).toBe(r.f32Total);
    expect(r.headReleasedAtLoad).toBeUndefined(); // packed (kn_sg, f32 layout) at the first recording, not at load
  });
});
