// Overlapping calls on one model: each gets its own result (same batch size, different batch
// sizes, encode with encodeImages and decode) as when run one at a time; dispose() with calls
// pending lets the running ones finish and refuses the rest, never hangs. And WebGPU errors of
// work that overlaps (pipelines compiling in parallel, two programs running) are reported under
// the name of the kernel / program that caused them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../src/core/gpu.js';
import { KernelLibrary } from '../src/core/kernels.js';
import { addScaled } from '../src/core/ops.js';
import { Program } from '../src/core/program.js';
import { DualToken, type DecodeResult, type EncodeResult } from '../src/model/dualtoken.js';
import { decodeImage } from '../src/node/decode.js';
import { createNodeGpu } from '../src/node/gpu.js';
import { openModelFiles } from '../src/node/load.js';
import { loadShaders } from '../src/node/shaders.js';
import { upload } from './helpers/gpu.js';
import { Golden, caseDir } from './helpers/golden.js';

let gpu: Gpu;
let A: Float32Array; // the golden pixel_values [2, 3, S, S]
let B: Float32Array; // the same two images, swapped
let images: ReturnType<typeof decodeImage>[];
beforeAll(async () => {
  gpu = await createNodeGpu();
  A = (await (await Golden.open('tiny')).get('pixel_values')).data as Float32Array;
  const half = A.length / 2;
  B = new Float32Array(A.length);
  B.set(A.subarray(half));
  B.set(A.subarray(0, half), half);
  images = [0, 1].map((b) => decodeImage(readFileSync(join(caseDir('tiny'), `input_${b}.png`)), `input_${b}.png`));
});
afterAll(() => gpu.destroy());

async function load(programsPerStage = 2): Promise<DualToken> {
  const files = await openModelFiles(join(caseDir('tiny'), 'model.safetensors'));
  return DualToken.create(gpu, loadShaders(), files.config, files.source, { programsPerStage });
}

const encoded = (r: EncodeResult) => ({ pixel: [...r.pixelCodes], semantic: [...r.semanticCodes], features: [...r.semanticFeatures], embedding: [...r.embedding] });
const decoded = (r: DecodeResult) => ({ recon: [...r.recon] });

describe('overlapping calls on one model', () => {
  it('each call gets its own result, as when run one at a time', async () => {
    const model = await load();
    const serial = {
      a2: await model.encode(A, 2),
      b2: await model.encode(B, 2),
      a1: await model.encode(A.subarray(0, A.length / 2), 1),
      img: await model.encodeImages(images),
    };
    const codesA = serial.a2.pixelCodes;
    const codesB = serial.b2.pixelCodes;
    expect(encoded(serial.a2).pixel).not.toEqual(encoded(serial.b2).pixel); // the two inputs give different codes
    const decA = await model.decode(codesA, 2);
    const decB = await model.decode(codesB, 2);
    // Twice over, everything at once: the same batch size with different inputs, B=1 and B=2, encodeImages and decode.
    for (let round = 0; round < 2; round++) {
      const [a2, b2, img, a1, b2again, dA, dB] = await Promise.all([
        model.encode(A, 2),
        model.encode(B, 2),
        model.encodeImages(images),
        model.encode(A.subarray(0, A.length / 2), 1),
        model.encode(B, 2),
        model.decode(codesA, 2),
        model.decode(codesB, 2),
      ]);
      expect(encoded(a2)).toEqual(encoded(serial.a2));
      expect(encoded(b2)).toEqual(encoded(serial.b2));
      expect(encoded(b2again)).toEqual(encoded(serial.b2));
      expect(encoded(img)).toEqual(encoded(serial.img));
      expect(encoded(a1)).toEqual(encoded(serial.a1));
      expect(decoded(dA)).toEqual(decoded(decA));
      expect(decoded(dB)).toEqual(decoded(decB));
    }
    model.dispose();
  });

  it('never evicts a program with calls queued (programsPerStage 1, three batch sizes at once)', async () => {
    const model = await load(1);
    const one = A.subarray(0, A.length / 2);
    const serial = [await model.encode(one, 1), await model.encode(A, 2)];
    const [x1, x2, x3, y2] = await Promise.all([model.encode(one, 1), model.encode(A, 2), model.encode(new Float32Array([...A, ...one]), 3), model.encode(A, 2)]);
    expect(encoded(x1)).toEqual(encoded(serial[0]));
    expect(encoded(x2)).toEqual(encoded(serial[1]));
    expect(encoded(y2)).toEqual(encoded(serial[1]));
    expect([...x3.pixelCodes.subarray(0, serial[1].pixelCodes.length)]).toEqual([...serial[1].pixelCodes]);
    model.dispose();
  });

  it('dispose() with calls pending: each finishes correctly or is refused, none hangs, the memory is freed', async () => {
    const model = await load();
    const serial = await model.encode(A, 2);
    const serialDecode = await model.decode(serial.pixelCodes, 2);
    // Disposed at once (no call has had its turn yet), and again once a call is on the GPU.
    for (const delayMs of [0, 30]) {
      const m = delayMs ? await load() : model;
      const pending = [m.encode(A, 2), m.encode(A, 2), m.decode(serial.pixelCodes, 2), m.encodeImages(images), m.encode(B, 2)];
      await new Promise((r) => setTimeout(r, delayMs));
      m.dispose();
      const settled = await Promise.allSettled(pending);
      settled.forEach((s, i) => {
        if (s.status === 'rejected') expect(String(s.reason)).toMatch(/^Error: DualToken: the model was disposed \((encode|decode) B=2\)/);
        else if (i === 2) expect(decoded(s.value as DecodeResult)).toEqual(decoded(serialDecode));
        else if (i < 2) expect(encoded(s.value as EncodeResult)).toEqual(encoded(serial));
      });
      console.log(`dispose after ${delayMs} ms: ${settled.map((s) => s.status).join(', ')}`);
      await expect(m.encode(A, 2)).rejects.toThrow('DualToken: the model was disposed (encode B=2)');
      await expect(m.decode(serial.pixelCodes, 2)).rejects.toThrow('DualToken: the model was disposed (decode B=2)');
      await expect(m.encodeImages(images)).rejects.toThrow('DualToken: the model was disposed (encodeImages)');
      expect(m.memory()).toMatchObject({ weights: 0, packed: 0, programs: 0 });
    }
  });
});

describe('errors of overlapping work name their own kernel', () => {
  const VALID = '@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(1) fn main() { y[0] = 1.0; }';
  const BROKEN = '@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(1) fn main() { y[0] = undefined_thing; }';

  it('a kernel that does not compile, compiled in parallel with valid ones', async () => {
    const lib = new KernelLibrary(gpu, { broken: BROKEN, good_a: VALID.replace('1.0', '2.0'), good_b: VALID.replace('1.0', '3.0') });
    const results = await Promise.allSettled(['broken', 'good_a', 'good_b'].map((k) => lib.compile(lib.info(k))));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/^Error: kernel 'broken': WGSL does not compile: line 2/);
  });

  it('a kernel whose pipeline is invalid, compiled in parallel with valid ones', async () => {
    const huge = VALID.replace('@workgroup_size(1)', '@workgroup_size(4096)'); // over maxComputeInvocationsPerWorkgroup
    const lib = new KernelLibrary(gpu, { good_a: VALID.replace('1.0', '2.0'), huge, good_b: VALID.replace('1.0', '3.0') });
    const results = await Promise.allSettled(['good_a', 'huge', 'good_b'].map((k) => lib.compile(lib.info(k))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/^Error: kernel 'huge': validation error/);
  });

  it('error scopes refuse asynchronous work', async () => {
    await expect(gpu.scoped('async work', async () => 1)).rejects.toThrow('async work: error scopes take synchronous work only');
  });

  it('an invalid dispatch in one program while another runs', async () => {
    const lib = new KernelLibrary(gpu, loadShaders());
    const bad = new Program(lib, 'bad program');
    const t = upload(gpu, [4], new Float32Array(4), 'same');
    bad.dispatch({ kernel: 'add_scaled', uniforms: { n: 4, nb: 4, alpha: 1 }, bind: { a: t, b: t, y: t }, groups: 1 }); // writable aliasing
    const good = new Program(lib, 'good program');
    const y = addScaled(good, upload(gpu, [4], new Float32Array([1, 2, 3, 4])), upload(gpu, [4], new Float32Array(4).fill(1)), 2);
    await Promise.all([bad.finalize(), good.finalize()]);
    const [b, g] = await Promise.allSettled([bad.run([t]), good.run([y])]);
    expect(g.status).toBe('fulfilled');
    if (g.status === 'fulfilled') expect([...new Float32Array(g.value[0])]).toEqual([3, 4, 5, 6]);
    expect(b.status).toBe('rejected');
    expect(String((b as PromiseRejectedResult).reason)).toMatch(/^Error: bad program: kernel 'add_scaled' \(dispatch #0\): validation error/);
  });
});
