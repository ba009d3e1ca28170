// The browser's JPEG path (src/browser/image.ts imageToRgb of a JPEG File/Blob -> src/browser/jpeg.ts,
// libjpeg-turbo in WebAssembly), run in Node: the two virtual modules that scripts/build-web.mjs
// makes for the bundle are given here (the wasm bytes from node_modules, no kernels). Every
// fixture of test/fixtures/jpeg/ equals Pillow's RGB; EXIF orientation only with exifRotate.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { RgbImage } from '../src/core/image.js';
import { imageToRgb } from '../src/browser/image.js';
import { decodeImage } from '../src/node/decode.js';
import { FIXTURES } from './helpers/golden.js';

vi.mock('virtual:shaders', () => ({ default: {} }));
vi.mock('virtual:jpeg-turbo-wasm', () => ({ default: new Uint8Array(readFileSync(createRequire(import.meta.url).resolve('@cwasm/jpeg-turbo/jpeg-turbo.wasm'))) }));

const DIR = join(FIXTURES, 'jpeg');
const cases = (JSON.parse(readFileSync(join(DIR, 'cases.json'), 'utf8')) as { cases: { name: string }[] }).cases;
const jpegFile = (name: string) => new File([readFileSync(join(DIR, `${name}.jpg`))], `${name}.jpg`, { type: 'image/jpeg' });
const pillow = (png: string) => decodeImage(readFileSync(join(DIR, png)), png);

function maxDiff(a: RgbImage, b: RgbImage): number | string {
  if (a.width !== b.width || a.height !== b.height) return `size ${a.width}x${a.height}`;
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

describe('browser JPEG path (imageToRgb of a File)', () => {
  it('every fixture equals Pillow', async () => {
    const diffs: Record<string, number | string> = {};
    for (const { name } of cases) {
      if (name === 'arithmetic') {
        await expect(imageToRgb(jpegFile(name))).rejects.toThrow('arithmetic.jpg: arithmetic-coded JPEG (SOF9) is not supported');
        continue;
      }
      diffs[name] = maxDiff(await imageToRgb(jpegFile(name)), pillow(`${name}.png`));
    }
    expect(Object.entries(diffs).filter(([, d]) => d !== 0)).toEqual([]);
  });

  it('EXIF orientation: ignored by default, applied with exifRotate', async () => {
    expect(maxDiff(await imageToRgb(jpegFile('exif6')), pillow('exif6.png'))).toBe(0);
    expect(maxDiff(await imageToRgb(jpegFile('exif6'), { exifRotate: true }), pillow('exif6.transposed.png'))).toBe(0);
  });

  it('a corrupt JPEG is one line naming the file', async () => {
    const bytes = new Uint8Array(readFileSync(join(DIR, 's420.jpg')));
    await expect(imageToRgb(new File([bytes.subarray(0, 500)], 'cut.jpg'))).rejects.toThrow(/^cut\.jpg: truncated JPEG/);
  });
});
