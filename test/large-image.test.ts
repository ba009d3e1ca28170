// Photos of any size in bounded memory. A declared size over the limits is refused from the
// header, before the codec runs; the lean PNG path (8-bit, not interlaced) equals pngjs; a real
// 48 MP PNG (8000x6000: 183 MiB as packed pixels, over lavapipe's 128 MiB storage binding) and a
// 100 MP image go through the official preprocessing in source bands, bit-exact against Pillow's
// pixel_values (scripts/pillow-ref.py; the same exactness as the golden cases: every value equal),
// and the tiny model encodes the 48 MP photo to the codes of Pillow's pixel_values.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG, type PackerOptions } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { MemoryReader } from '../src/core/bytes.js';
import { rgbFromRgba, type RgbImage } from '../src/core/image.js';
import { ImageBatch, planPreprocess, preprocess, type UploadOptions } from '../src/core/preprocess.js';
import { Program } from '../src/core/program.js';
import { openSafetensors } from '../src/core/safetensors.js';
import { decodeImage } from '../src/node/decode.js';
import { loadDualToken } from '../src/node/load.js';
import { FIXTURES, caseDir } from './helpers/golden.js';
import { testGpu } from './helpers/gpu.js';
import { errorOf } from './helpers/errors.js';

const DIR = join(FIXTURES, 'large-image');
const S = 64; // the tiny model's image size, at which the references were made

/** Peak resident memory of this test file's process (vitest runs each file in its own fork). */
function peakRssMiB(): number {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
}

/**
 * Pixel (x, y) of scripts/pillow-ref.py's photo(width, height): the same integer formula (every
 * quotient is of integers below 2^52, so Math.floor of the float quotient is Python's //).
 */
function photoPixel(x: number, y: number, width: number, height: number): [number, number, number] {
  const fd = Math.floor;
  const horizon = fd((2 * height) / 3);
  let r: number;
  let g: number;
  let b: number;
  if (y < horizon) {
    r = 60 + fd((120 * y) / horizon) + fd((40 * x) / width);
    g = 110 + fd((100 * y) / horizon);
    b = 230 - fd((90 * y) / horizon);
  } else {
    r = 90 + fd((60 * (y - horizon)) / (height - horizon));
    g = 120 - fd((50 * (y - horizon)) / (height - horizon)) + fd((30 * x) / width);
    b = 50 + fd((20 * x) / width);
  }
  const d2 = (x - fd((3 * width) / 5)) ** 2 + (y - fd(height / 3)) ** 2;
  if (d2 < fd(height / 3) ** 2) {
    const rings = (fd(d2 / 32768) & 1) * 40;
    r += rings;
    g += rings / 2;
  }
  if (y >= horizon - fd(height / 6) && x < fd(width / 2) && x >= fd(width / 8)) {
    const tile = (fd(x / 160) + fd(y / 160)) & 1;
    [r, g, b] = [140 + 70 * tile, 100 + 50 * tile, 90 + 30 * tile];
  }
  if (x % 211 < 3 || y % 173 < 3) [r, g, b] = [fd(r / 3), fd(g / 3), fd(b / 3)];
  if (Math.abs(x - fd(width / 2)) < 300 && Math.abs(y - fd(height / 2)) < 300) {
    const noise = (fd((x * 2654435761 + y * 40503) / 128) % 41) - 20;
    [r, g, b] = [r + noise, g + noise, b + noise];
  }
  const clip = (v: number) => Math.min(255, Math.max(0, v));
  return [clip(r), clip(g), clip(b)];
}

function photo(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i += 3) data.set(photoPixel(x, y, width, height), i);
  }
  return { width, height, data };
}

/** Where `img` differs from photo(width, height), if anywhere (without a second full-size image). */
function firstDifferenceFromPhoto(img: RgbImage): string | undefined {
  for (let y = 0, i = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++, i += 3) {
      const want = photoPixel(x, y, img.width, img.height);
      const got = [img.data[i], img.data[i + 1], img.data[i + 2]];
      if (got.some((v, c) => v !== want[c])) return `(${x}, ${y}): ${got} instead of ${want}`;
    }
  }
  return undefined;
}

async function pillowPixelValues(file: string): Promise<Float32Array> {
  const path = join(DIR, file);
  const src = await openSafetensors(new MemoryReader(readFileSync(path), path));
  const bytes = await src.read('pixel_values');
  expect(src.info('pixel_values')!.shape).toEqual([1, 3, S, S]);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** pixel_values [1, 3, S, S] of one image through ImageBatch.upload (banded) and preprocess(). */
async function gpuPixelValues(img: RgbImage, opts: UploadOptions = {}): Promise<Float32Array> {
  const { kernels } = await testGpu();
  const batch = await ImageBatch.upload(kernels, [img], S, opts);
  const prog = new Program(kernels, 'preprocess large');
  try {
    const pv = preprocess(prog, batch);
    const [bytes] = await prog.run([pv]);
    return new Float32Array(bytes, 0, pv.numel);
  } finally {
    prog.destroy();
    batch.destroy();
  }
}

function mismatches(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/** Source bands of one image at a band limit: the rows of its window over the rows one band holds. */
function bandsOf(img: RgbImage, bandBytes: number): number {
  const plan = planPreprocess(img.width, img.height, S, []);
  return Math.ceil(plan.rows / Math.floor(bandBytes / (4 * plan.cols)));
}

const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(2);

describe('sizes over the limits are refused before decoding', () => {
  /** A JPEG of SOI, a baseline frame header (one grey component) of the given size, EOI: no pixel data. */
  const forgedJpeg = (w: number, h: number) => new Uint8Array([0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, h >> 8, h & 255, w >> 8, w & 255, 1, 1, 0x11, 0, 0xff, 0xd9]);

  it('JPEG: from the frame header, naming the file and the limit', () => {
    expect(errorOf(() => decodeImage(forgedJpeg(20000, 100), 'wide.jpg'))).toBe('wide.jpg: image is 20000x100 pixels, over the limit of 16384 pixels per side');
    expect(errorOf(() => decodeImage(forgedJpeg(12000, 9000), 'big.jpg'))).toBe('big.jpg: image is 12000x9000 pixels, over the limit of 100 megapixels');
  });

  it('an RgbImage handed to ImageBatch.upload, naming the image and the limit', async () => {
    const { kernels } = await testGpu();
    const wide: RgbImage = { width: 16385, height: 1, data: new Uint8Array(16385 * 3) };
    await expect(ImageBatch.upload(kernels, [wide], S)).rejects.toThrow('image 0: image is 16385x1 pixels, over the limit of 16384 pixels per side');
  });
});

describe('the lean PNG path (8-bit, not interlaced) equals pngjs', () => {
  const W = 37;
  const H = 23;
  for (const colorType of [0, 2, 4, 6]) {
    it(`colour type ${colorType}, every filter type`, () => {
      const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType]!;
      const data = Uint8Array.from({ length: W * H * channels }, (_, i) => (i * 7919 + ((i * i) >> 3)) & 255);
      for (const filterType of [0, 1, 2, 3, 4]) {
        const opts: PackerOptions = { colorType: colorType as PackerOptions['colorType'], inputColorType: colorType as PackerOptions['inputColorType'], inputHasAlpha: colorType >= 4, filterType };
        const file = PNG.sync.write({ width: W, height: H, data } as unknown as PNG, opts);
        const ref = PNG.sync.read(file);
        expect(decodeImage(new Uint8Array(file), 'f.png').data, `filter ${filterType}`).toEqual(rgbFromRgba(W, H, ref.data).data);
      }
    });
  }
});

describe('large photos: banded preprocessing vs Pillow', () => {
  it('48 MP PNG (8000x6000): decode, preprocess in bands, encode with the tiny model', async () => {
    const { gpu } = await testGpu();
    const t0 = performance.now();
    const img = decodeImage(readFileSync(join(DIR, 'photo-8000x6000.png')), 'photo-8000x6000.png');
    const decodeS = seconds(t0);
    expect(firstDifferenceFromPhoto(img)).toBeUndefined();
    const ref = await pillowPixelValues('photo-8000x6000.safetensors');

    // The default band budget, and bands as large as the adapter's storage binding allows.
    const bindingLimit = gpu.limits.maxStorageBufferBindingSize;
    const plan = planPreprocess(img.width, img.height, S, []);
    expect(plan.rows * plan.cols * 4, 'the source window must not fit one binding').toBeGreaterThan(bindingLimit);
    const t1 = performance.now();
    const pv = await gpuPixelValues(img);
    const preprocessS = seconds(t1);
    expect(mismatches(pv, ref), 'pixel_values values that differ from Pillow').toBe(0);
    expect(mismatches(await gpuPixelValues(img, { bandBytes: bindingLimit }), ref), `in bands of ${bindingLimit} bytes`).toBe(0);

    const model = await loadDualToken(caseDir('tiny'));
    try {
      const t2 = performance.now();
      const fromImage = await model.encodeImages([img]);
      const encodeS = seconds(t2);
      const fromPillow = await model.encode(ref, 1);
      expect(fromImage.pixelCodes).toEqual(fromPillow.pixelCodes);
      expect(fromImage.semanticCodes).toEqual(fromPillow.semanticCodes);
      console.log(
        `48 MP on ${gpu.describe()}: decode ${decodeS} s, preprocess ${preprocessS} s (${bandsOf(img, bindingLimit)} bands at the binding limit), ` +
          `encodeImages ${encodeS} s; pixel_values equal to Pillow's; peak RSS of this test file ${peakRssMiB().toFixed(0)} MiB`,
      );
    } finally {
      model.dispose();
    }
  });

  it('100 MP (10000x10000, made in memory with the script formula): preprocess in bands', async () => {
    const img = photo(10000, 10000);
    const ref = await pillowPixelValues('photo-10000x10000.safetensors');
    const t0 = performance.now();
    const pv = await gpuPixelValues(img);
    console.log(`100 MP: preprocess ${seconds(t0)} s; peak RSS of this test file ${peakRssMiB().toFixed(0)} MiB`);
    expect(mismatches(pv, ref), 'pixel_values values that differ from Pillow').toBe(0);
  });
});
