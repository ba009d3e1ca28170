// JPEG pixels as Pillow decodes them (the official pipeline's Image.open(...).convert('RGB')):
// every fixture of test/fixtures/jpeg/ (scripts/jpeg-ref.py: each chroma subsampling, grey,
// progressive, restart markers, Adobe CMYK / YCCK, odd sizes, EXIF orientation) decoded by the
// engine and compared with Pillow 9.4's RGB of it, printing max |difference| per case (jpeg-js,
// the decoder used before, beside it for comparison); the official pixel_values of a JPEG; EXIF
// orientation off by default (API and the built CLI, dist/: `npm run build` first); decode time of
// a 12 MP JPEG against jpeg-js (printed, not asserted).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { MemoryReader } from '../src/core/bytes.js';
import { applyOrientation, readJpegHeader, type RgbImage } from '../src/core/image.js';
import { ImageBatch, preprocess } from '../src/core/preprocess.js';
import { Program } from '../src/core/program.js';
import { openSafetensors } from '../src/core/safetensors.js';
import { decodeImage } from '../src/node/decode.js';
import { readImage } from '../src/node/io.js';
import { loadDualToken } from '../src/node/load.js';
import { cli } from './helpers/cli.js';
import { FIXTURES, caseDir } from './helpers/golden.js';
import { testGpu } from './helpers/gpu.js';
import { errorOf } from './helpers/errors.js';

const DIR = join(FIXTURES, 'jpeg');
const S = 64; // the tiny model's image size, at which photo.safetensors was made

interface Case {
  name: string;
  what: string;
  mode: string;
  width: number;
  height: number;
  bytes: number;
}
const manifest = JSON.parse(readFileSync(join(DIR, 'cases.json'), 'utf8')) as { pillow: string; cases: Case[] };

const file = (name: string) => new Uint8Array(readFileSync(join(DIR, name)));
/** Pillow's RGB of a case (a PNG, which the engine decodes exactly as Pillow: test/image-io.test.ts). */
const pillowRgb = (name: string) => decodeImage(file(name), name);

/** max |a - b| over every sample, or a note when the sizes differ. */
function maxDiff(a: RgbImage, b: RgbImage): number | string {
  if (a.width !== b.width || a.height !== b.height) return `size ${a.width}x${a.height}`;
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

function jpegJs(bytes: Uint8Array): RgbImage | string {
  try {
    const r = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 4096 });
    return { width: r.width, height: r.height, data: r.data };
  } catch (e) {
    return `error: ${(e as Error).message.slice(0, 30)}`;
  }
}

describe('JPEG decoding equals Pillow', () => {
  it(`every fixture (Pillow ${manifest.pillow}): max |engine - Pillow| = 0`, () => {
    const rows: string[] = [];
    const failures: string[] = [];
    for (const c of manifest.cases) {
      const bytes = file(`${c.name}.jpg`);
      const ref = pillowRgb(`${c.name}.png`);
      expect([ref.width, ref.height]).toEqual([c.width, c.height]);
      const old = jpegJs(bytes);
      const before = typeof old === 'string' ? old : String(maxDiff(old, ref));
      if (readJpegHeader(bytes, c.name).arithmetic) {
        // Not in the WebAssembly build of libjpeg-turbo: refused by name (Pillow decodes these).
        expect(errorOf(() => decodeImage(bytes, `${c.name}.jpg`))).toBe(`${c.name}.jpg: arithmetic-coded JPEG (SOF9) is not supported`);
        rows.push(`| ${c.name} | ${c.what} | ${c.width}x${c.height} | refused (not supported) | ${before} |`);
        continue;
      }
      const got = decodeImage(bytes, `${c.name}.jpg`);
      const d = maxDiff(got, ref);
      if (d !== 0) failures.push(`${c.name}: ${d}`);
      rows.push(`| ${c.name} | ${c.what} | ${c.width}x${c.height} | ${d} | ${before} |`);
    }
    console.log(['| case | JPEG | size | max abs diff, engine vs Pillow | jpeg-js vs Pillow |', '|---|---|---|---|---|', ...rows].join('\n'));
    expect(failures).toEqual([]);
  });

  it("the official pixel_values of a JPEG: Pillow's, bit for bit, from the engine's decode and GPU preprocessing", async () => {
    const img = decodeImage(file('photo.jpg'), 'photo.jpg');
    const st = await openSafetensors(new MemoryReader(file('photo.safetensors'), 'photo.safetensors'));
    expect(st.info('pixel_values')!.shape).toEqual([1, 3, S, S]);
    const bytes = await st.read('pixel_values');
    const ref = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const { kernels } = await testGpu();
    const batch = await ImageBatch.upload(kernels, [img], S);
    const prog = new Program(kernels, 'preprocess jpeg');
    let pv: Float32Array;
    try {
      const t = preprocess(prog, batch);
      const [out] = await prog.run([t]);
      pv = new Float32Array(out, 0, t.numel);
    } finally {
      prog.destroy();
      batch.destroy();
    }
    let differ = 0;
    for (let i = 0; i < ref.length; i++) if (pv[i] !== ref[i]) differ++;
    expect(differ, 'pixel_values values that differ from Pillow').toBe(0);
  });
});

describe('EXIF orientation', () => {
  it('is ignored by default, as Pillow Image.open; exifRotate: true turns the image upright (Pillow exif_transpose)', () => {
    const bytes = file('exif6.jpg');
    expect(readJpegHeader(bytes, 'exif6.jpg').orientation).toBe(6);
    const asStored = decodeImage(bytes, 'exif6.jpg');
    expect([asStored.width, asStored.height]).toEqual([24, 16]);
    expect(maxDiff(asStored, pillowRgb('exif6.png'))).toBe(0);
    const upright = decodeImage(bytes, 'exif6.jpg', { exifRotate: true });
    expect([upright.width, upright.height]).toEqual([16, 24]);
    expect(maxDiff(upright, pillowRgb('exif6.transposed.png'))).toBe(0);
    expect(upright).toEqual(applyOrientation(asStored, 6));
  });

  it('readImage passes exifRotate through; the built CLI encodes as stored by default, upright with --exif-rotate', async () => {
    const path = join(DIR, 'exif6.jpg');
    expect([readImage(path).width, readImage(path, { exifRotate: true }).width]).toEqual([24, 16]);
    const encode = (...flags: string[]) => {
      const r = cli(['encode', '--model', caseDir('tiny'), path, '--out', '-', '--format', 'json', ...flags]);
      expect(r.status, r.stderr).toBe(0);
      return (JSON.parse(r.stdout.toString('utf8')) as { pixel: number[] }).pixel;
    };
    const model = await loadDualToken(caseDir('tiny'));
    try {
      const asStored = await model.encodeImages([decodeImage(file('exif6.jpg'), 'exif6.jpg')]);
      const upright = await model.encodeImages([decodeImage(file('exif6.jpg'), 'exif6.jpg', { exifRotate: true })]);
      expect(Array.from(upright.pixelCodes)).not.toEqual(Array.from(asStored.pixelCodes));
      expect(encode()).toEqual(Array.from(asStored.pixelCodes));
      expect(encode('--exif-rotate')).toEqual(Array.from(upright.pixelCodes));
    } finally {
      model.dispose();
    }
  });
});

describe('bad JPEG data', () => {
  it('fails with one line naming the file, and the next JPEG still decodes', () => {
    const good = file('s420.jpg');
    // The same file with its Huffman tables' code counts broken: libjpeg stops with an error.
    const bad = good.slice();
    for (let i = 2; i + 4 < bad.length; i++) {
      if (bad[i] === 0xff && bad[i + 1] === 0xc4) {
        bad.fill(0xff, i + 5, i + 21); // 16 counts of 255 codes: "Bogus Huffman table definition"
        break;
      }
    }
    const msg = errorOf(() => decodeImage(bad, 'bad.jpg'));
    expect(msg).toMatch(/^bad\.jpg: corrupt JPEG \(libjpeg-turbo [^\n]*\)$/);
    expect(maxDiff(decodeImage(good, 's420.jpg'), pillowRgb('s420.png'))).toBe(0);
    // Scan data with garbage inside: libjpeg warns and decodes through, as Pillow does.
    const noisy = good.slice();
    for (let i = noisy.length - 400; i < noisy.length - 300; i++) if (noisy[i] !== 0xff && noisy[i - 1] !== 0xff) noisy[i] ^= 0x5a;
    const img = decodeImage(noisy, 'noisy.jpg');
    expect([img.width, img.height]).toEqual([48, 40]);
  });

  it('limits are checked from the header before libjpeg runs (12000x9000 forged header)', () => {
    const forged = new Uint8Array([0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 9000 >> 8, 9000 & 255, 12000 >> 8, 12000 & 255, 1, 1, 0x11, 0, 0xff, 0xd9]);
    expect(errorOf(() => decodeImage(forged, 'big.jpg'))).toBe('big.jpg: image is 12000x9000 pixels, over the limit of 100 megapixels');
  });
});

describe('speed', () => {
  it('a 12 MP JPEG (4000x3000, jpeg-js q90 4:4:4): engine vs jpeg-js (printed, not asserted)', () => {
    const W = 4000;
    const H = 3000;
    const rgba = new Uint8Array(W * H * 4);
    for (let y = 0, i = 0; y < H; y++) {
      for (let x = 0; x < W; x++, i += 4) {
        rgba[i] = ((x * 255) / W) ^ ((y >> 4) & 31);
        rgba[i + 1] = (y * 255) / H;
        rgba[i + 2] = (x >> 5) % 2 ? 200 : (((x * 2654435761 + y * 40503) >>> 9) & 63) + 40;
        rgba[i + 3] = 255;
      }
    }
    const bytes = new Uint8Array(jpeg.encode({ width: W, height: H, data: rgba }, 90).data);
    const dir = mkdtempSync(join(tmpdir(), 'jpeg-speed-'));
    try {
      writeFileSync(join(dir, 'big.jpg'), bytes);
      const time = (fn: () => void) => {
        const t0 = performance.now();
        fn();
        return performance.now() - t0;
      };
      const engine: number[] = [];
      const old: number[] = [];
      let img: RgbImage | undefined;
      let ref: RgbImage | string | undefined;
      for (let rep = 0; rep < 2; rep++) {
        engine.push(time(() => (img = decodeImage(bytes, 'big.jpg'))));
        old.push(time(() => (ref = jpegJs(bytes))));
      }
      const e = Math.min(...engine);
      const o = Math.min(...old);
      console.log(`12 MP JPEG (${(bytes.length / 1e6).toFixed(1)} MB): engine (libjpeg-turbo wasm) ${e.toFixed(0)} ms, jpeg-js ${o.toFixed(0)} ms: ${(o / e).toFixed(1)}x faster (best of 2 each)`);
      // 36 MB of RGB: returned in place in the wasm memory (no copy). Sane pixels: within jpeg-js's
      // 4:4:4 error of them (3 levels on the fixtures), and a small JPEG decodes right after.
      expect(img!.data.byteLength).toBe(W * H * 3);
      expect(img!.data.buffer.byteLength).toBeGreaterThan(W * H * 3);
      expect(maxDiff(img!, ref as RgbImage)).toBeLessThanOrEqual(4);
      expect(maxDiff(readImage(join(DIR, 's420.jpg')), pillowRgb('s420.png'))).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
