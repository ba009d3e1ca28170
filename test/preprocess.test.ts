// The official preprocessing on the GPU (Pillow bicubic resize + center crop + normalize) and the
// 8-bit output: bit-exact against the CPU reference on random images (whole, and read in source
// bands of a few rows), and against the golden cases.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/core/config.js';
import type { RgbImage } from '../src/core/image.js';
import { ImageBatch, centerCropOffset, planPreprocess, preprocess, resizedSize, toRgb8, unpackRgb8, type UploadOptions } from '../src/core/preprocess.js';
import { Program } from '../src/core/program.js';
import { decodeImage } from '../src/node/decode.js';
import { precomputeCoeffs, preprocessRef, toPixelValues, toRgb8Ref } from './helpers/cpu-ref-preprocess.js';
import { GOLDEN_CASES, Golden, caseDir } from './helpers/golden.js';
import { testGpu, upload } from './helpers/gpu.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Smooth gradients plus noise and a few saturated pixels (which make the bicubic overshoot clip). */
function randomImage(width: number, height: number, seed: number): RgbImage {
  const r = rng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const smooth = 128 + 100 * Math.sin((x * (c + 1)) / 7 + y / 5 + seed);
        const v = r() < 0.1 ? (r() < 0.5 ? 0 : 255) : smooth + (r() - 0.5) * 60;
        data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return { width, height, data };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; mismatches: number } {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  let mismatches = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d !== 0) mismatches++;
    max = Math.max(max, d);
  }
  return { max, mismatches };
}

/** Runs preprocess() on the GPU: the 8-bit crops and pixel_values. */
async function gpuPreprocess(images: RgbImage[], S: number, opts: UploadOptions = {}): Promise<{ rgb8: RgbImage[]; pixelValues: Float32Array }> {
  const { kernels } = await testGpu();
  const batch = await ImageBatch.upload(kernels, images, S, opts);
  const prog = new Program(kernels, `preprocess S=${S}`, true);
  const pv = preprocess(prog, batch);
  pv.pinned = true;
  const rgb8 = prog.tapped('preprocess.rgb8');
  const [pvBytes, rgbBytes] = await prog.run([pv, rgb8]);
  prog.destroy();
  batch.destroy();
  return { rgb8: unpackRgb8(rgbBytes, rgb8.shape), pixelValues: new Float32Array(pvBytes, 0, pv.numel) };
}

describe('preprocessing sizes', () => {
  it('resizedSize: shorter side S, longer floor(S * long / short)', () => {
    expect(resizedSize(105, 97, 64)).toEqual([69, 64]);
    expect(resizedSize(90, 131, 64)).toEqual([64, 93]);
    expect(resizedSize(58, 47, 64)).toEqual([78, 64]);
    expect(resizedSize(50, 50, 384)).toEqual([384, 384]);
  });

  it('centerCropOffset: Python round half to even', () => {
    expect([centerCropOffset(69, 64), centerCropOffset(93, 64), centerCropOffset(99, 64), centerCropOffset(78, 64), centerCropOffset(64, 64)]).toEqual([2, 14, 18, 7, 0]);
  });
});

describe('tap tables', () => {
  it("equal Pillow's fixed-point coefficients over the crop window, for many sizes", () => {
    let checked = 0;
    for (const S of [7, 16, 64, 384]) {
      for (let size = 1; size <= 1200; size += size < 100 ? 1 : 37) {
        const height = S + 5;
        const tables: number[] = [];
        const plan = planPreprocess(size, height, S, tables);
        const newW = plan.resized[0];
        const ref = precomputeCoeffs(size, newW);
        for (let i = 0; i < S; i++) {
          const o = plan.left + i;
          const e = plan.hTable + i * (plan.hTaps + 2);
          const [first, n] = [plan.colFirst + tables[e], tables[e + 1]];
          const coeffs = [...Int32Array.from(tables.slice(e + 2, e + 2 + n))];
          const want = newW === size ? { first: o, n: 1, coeffs: [1 << 22] } : { first: ref.bounds[2 * o], n: ref.bounds[2 * o + 1], coeffs: [...ref.kk.subarray(o * ref.ksize, o * ref.ksize + ref.bounds[2 * o + 1])] };
          expect({ first, n, coeffs }, `${size} -> ${newW}, output ${o}`).toEqual(want);
          checked++;
        }
      }
    }
    console.log(`${checked} table entries equal Pillow's`);
  });
});

describe('preprocess on the GPU vs the CPU reference (bit-exact)', () => {
  // [width, height] per image: down- and upscaling, portrait and landscape, odd sizes, extreme
  // aspect ratios, a 1x1 image, and sizes that need no resize at all (crop only).
  const cases: { S: number; sizes: [number, number][] }[] = [
    { S: 16, sizes: [[37, 23], [13, 29], [16, 16], [101, 16], [333, 250], [1, 1]] },
    { S: 40, sizes: [[31, 200], [5, 3], [41, 40], [40, 97], [2, 9]] },
    { S: 7, sizes: [[300, 11], [7, 7], [8, 9], [123, 77]] },
  ];
  for (const { S, sizes } of cases) {
    it(`S = ${S}: ${sizes.map(([w, h]) => `${w}x${h}`).join(', ')}`, async () => {
      const images = sizes.map(([w, h], i) => randomImage(w, h, 100 * S + i));
      const got = await gpuPreprocess(images, S);
      const ref = images.map((img) => preprocessRef(img, S));
      images.forEach((img, b) => {
        const d = maxDiff(got.rgb8[b].data, ref[b].data);
        expect(d.mismatches, `${img.width}x${img.height} -> ${S}: ${d.mismatches} 8-bit values differ (max ${d.max})`).toBe(0);
      });
      expect(maxDiff(got.pixelValues, toPixelValues(ref)).max).toBe(0);
    });
  }
});

describe('preprocess in source bands (bit-exact against the unbanded run and the CPU reference)', () => {
  // Band limits of a few source rows force many bands, with the vertical taps of one output row
  // spread over several of them; down- and upscaling, portrait and landscape.
  const S = 16;
  const sizes: [number, number][] = [[333, 250], [37, 123], [16, 40], [61, 17]];
  it(`S = ${S}: ${sizes.map(([w, h]) => `${w}x${h}`).join(', ')}, bands of 1, 3 and 7 rows of the widest window`, async () => {
    const images = sizes.map(([w, h], i) => randomImage(w, h, 900 + i));
    const whole = await gpuPreprocess(images, S);
    const ref = images.map((img) => preprocessRef(img, S));
    images.forEach((img, b) => expect(maxDiff(whole.rgb8[b].data, ref[b].data).mismatches, `${img.width}x${img.height} unbanded`).toBe(0));
    for (const rows of [1, 3, 7]) {
      // Bytes for `rows` source rows of the widest window (4 bytes per packed pixel).
      const bandBytes = rows * 4 * Math.max(...images.map((img) => planPreprocess(img.width, img.height, S, []).cols));
      const banded = await gpuPreprocess(images, S, { bandBytes });
      images.forEach((img, b) => {
        const d = maxDiff(banded.rgb8[b].data, ref[b].data);
        expect(d.mismatches, `${img.width}x${img.height} in bands of ${bandBytes} bytes: ${d.mismatches} values differ from the CPU reference`).toBe(0);
      });
      expect(maxDiff(banded.pixelValues, whole.pixelValues).mismatches).toBe(0);
    }
  });

  it('a band limit below one source row is refused, naming the image and the limit', async () => {
    await expect(gpuPreprocess([randomImage(50, 40, 1)], 16, { bandBytes: 100 })).rejects.toThrow(/^image 0: a source row of \d+ pixels needs \d+ bytes, over the band limit of 100 bytes$/);
  });
});

describe('toRgb8 on the GPU vs the CPU reference', () => {
  it('random [2, 3, 5, 7] values in and out of [-1, 1], and values on the 8-bit boundaries', async () => {
    const { gpu, kernels } = await testGpu();
    const shape = [2, 3, 5, 7];
    const r = rng(7);
    const x = Float32Array.from({ length: 2 * 3 * 5 * 7 }, (_, i) => (i % 3 === 0 ? Math.floor(r() * 256) / 127.5 - 1 : (r() - 0.5) * 2.6));
    const prog = new Program(kernels, 'to_rgb8 random');
    const out = toRgb8(prog, upload(gpu, shape, x, 'recon'));
    const [bytes] = await prog.run([out]);
    const got = unpackRgb8(bytes, out.shape);
    const ref = toRgb8Ref(x, shape);
    expect(got.map((img) => [img.width, img.height])).toEqual([[7, 5], [7, 5]]);
    expect(got.map((img, b) => maxDiff(img.data, ref[b].data).mismatches)).toEqual([0, 0]);
    prog.destroy();
  });
});

describe('golden preprocessing and 8-bit output', () => {
  for (const name of GOLDEN_CASES) {
    it(`${name}: input_*.png -> preprocessed_*.png and pixel_values; recon -> recon_*.png`, async () => {
      const dir = caseDir(name);
      const cfg = parseConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'siglip_config.json'), 'utf8')));
      const S = cfg.vision.imageSize;
      const golden = await Golden.open(name);
      const pv = await golden.get('pixel_values');
      const B = pv.shape[0];
      const png = (file: string) => decodeImage(readFileSync(join(dir, file)), file);
      const inputs = Array.from({ length: B }, (_, b) => png(`input_${b}.png`));

      const got = await gpuPreprocess(inputs, S);
      for (let b = 0; b < B; b++) {
        const expected = png(`preprocessed_${b}.png`);
        const gpuDiff = maxDiff(got.rgb8[b].data, expected.data);
        const cpuDiff = maxDiff(preprocessRef(inputs[b], S).data, expected.data);
        console.log(`${name} preprocessed_${b}.png (${inputs[b].width}x${inputs[b].height} -> ${S}): GPU max |diff| ${gpuDiff.max} (${gpuDiff.mismatches} values differ), CPU reference max |diff| ${cpuDiff.max}`);
        expect(gpuDiff.max).toBe(0);
        expect(cpuDiff.max).toBe(0);
      }
      const pvDiff = maxDiff(got.pixelValues, pv.data);
      console.log(`${name} pixel_values [${pv.shape}]: max |diff| ${pvDiff.max} (${pvDiff.mismatches} values differ)`);
      expect(pvDiff.max).toBe(0);

      // recon -> 8-bit, truncating.
      const { gpu, kernels } = await testGpu();
      const recon = await golden.get('recon');
      const prog = new Program(kernels, `to_rgb8 ${name}`);
      const out = toRgb8(prog, upload(gpu, recon.shape, recon.data as Float32Array, 'recon'));
      const [bytes] = await prog.run([out]);
      const images = unpackRgb8(bytes, out.shape);
      const ref = toRgb8Ref(recon.data as Float32Array, recon.shape);
      for (let b = 0; b < B; b++) {
        const expected = png(`recon_${b}.png`);
        const vsPng = maxDiff(images[b].data, expected.data);
        const vsRef = maxDiff(images[b].data, ref[b].data);
        const refVsPng = maxDiff(ref[b].data, expected.data);
        console.log(`${name} recon_${b}.png: GPU ${vsPng.mismatches} mismatches (max ${vsPng.max}), GPU vs CPU reference ${vsRef.mismatches}, CPU reference vs png ${refVsPng.mismatches}`);
        expect(vsRef.mismatches).toBe(0);
        expect(vsPng.mismatches).toBe(0);
      }
      prog.destroy();
    });
  }
});
