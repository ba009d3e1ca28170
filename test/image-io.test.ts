// Image files in and out: every PNG colour class, JPEG (with EXIF orientation), PNG encoding,
// and one clear error line naming the file for every kind of bad input.
import { deflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG, type PackerOptions } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { applyOrientation, crc32, type RgbImage } from '../src/core/image.js';
import { decodeImage, encodePng } from '../src/node/decode.js';
import { errorOf } from './helpers/errors.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

function pngjsWrite(width: number, height: number, data: Uint8Array | Uint16Array, opts: PackerOptions): Uint8Array {
  return new Uint8Array(PNG.sync.write({ width, height, data } as unknown as PNG, opts));
}

// Hand-built PNGs, for what pngjs cannot write (palette, colour keys) and for forged headers.
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set([...type].map((ch) => ch.charCodeAt(0)), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

function ihdr(width: number, height: number, bitDepth: number, colorType: number): Uint8Array {
  const d = new Uint8Array(13);
  const view = new DataView(d.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  d[8] = bitDepth;
  d[9] = colorType;
  return chunk('IHDR', d);
}

/** A PNG from unfiltered scanlines (filter byte 0 is added here) and extra chunks before IDAT. */
function handPng(width: number, height: number, bitDepth: number, colorType: number, rows: Uint8Array[], extra: Uint8Array[] = []): Uint8Array {
  const raw = concat(rows.flatMap((r) => [new Uint8Array([0]), r]));
  const signature = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return concat([signature, ihdr(width, height, bitDepth, colorType), ...extra, chunk('IDAT', new Uint8Array(deflateSync(raw))), chunk('IEND', new Uint8Array())]);
}

function rowsOf(data: Uint8Array, height: number): Uint8Array[] {
  const stride = data.length / height;
  return Array.from({ length: height }, (_, y) => data.subarray(y * stride, (y + 1) * stride));
}

const W = 7;
const H = 5;

describe('PNG decoding, every colour class', () => {
  const rgb = randomBytes(W * H * 3, 1);

  it('RGB 8-bit', () => {
    const img = decodeImage(pngjsWrite(W, H, rgb, { colorType: 2, inputColorType: 2, inputHasAlpha: false }), 'rgb.png');
    expect(img).toEqual({ width: W, height: H, data: rgb });
  });

  it('RGBA 8-bit: alpha dropped, colour kept even where transparent', () => {
    const rgba = randomBytes(W * H * 4, 2);
    rgba[3] = 0; // a fully transparent pixel keeps its RGB
    const img = decodeImage(pngjsWrite(W, H, rgba, { colorType: 6 }), 'rgba.png');
    expect(img.data).toEqual(Uint8Array.from({ length: W * H * 3 }, (_, i) => rgba[Math.floor(i / 3) * 4 + (i % 3)]));
  });

  it('grey and grey+alpha 8-bit: grey replicated', () => {
    const grey = randomBytes(W * H, 3);
    const expected = Uint8Array.from({ length: W * H * 3 }, (_, i) => grey[Math.floor(i / 3)]);
    expect(decodeImage(pngjsWrite(W, H, grey, { colorType: 0, inputColorType: 0, inputHasAlpha: false }), 'grey.png').data).toEqual(expected);
    const greyAlpha = Uint8Array.from({ length: W * H * 2 }, (_, i) => (i % 2 ? 17 * (i % 15) : grey[i >> 1]));
    expect(decodeImage(pngjsWrite(W, H, greyAlpha, { colorType: 4, inputColorType: 4 }), 'grey-alpha.png').data).toEqual(expected);
  });

  it('palette (with tRNS): the palette colours', () => {
    const palette = randomBytes(4 * 3, 4);
    const index = Uint8Array.from({ length: W * H }, (_, i) => (i * 7) % 4);
    const png = handPng(W, H, 8, 3, rowsOf(index, H), [chunk('PLTE', palette), chunk('tRNS', new Uint8Array([0, 128]))]);
    const img = decodeImage(png, 'palette.png');
    expect(img.data).toEqual(Uint8Array.from({ length: W * H * 3 }, (_, i) => palette[index[Math.floor(i / 3)] * 3 + (i % 3)]));
  });

  it('colour key (RGB / grey + tRNS): the keyed pixels keep their colour, as in Pillow', () => {
    const key = rgb.subarray(0, 3); // pixel 0 is the transparent colour
    const img = decodeImage(handPng(W, H, 8, 2, rowsOf(rgb, H), [chunk('tRNS', new Uint8Array([0, key[0], 0, key[1], 0, key[2]]))]), 'key.png');
    expect(img.data).toEqual(rgb);
    const grey = randomBytes(W * H, 5);
    const greyImg = decodeImage(handPng(W, H, 8, 0, rowsOf(grey, H), [chunk('tRNS', new Uint8Array([0, grey[0]]))]), 'key-grey.png');
    expect(greyImg.data[0]).toBe(grey[0]);
  });

  it('16-bit RGB and grey: the high byte (>> 8)', () => {
    const r = rng(6);
    const words = Uint16Array.from({ length: W * H * 3 }, () => Math.floor(r() * 65536));
    const img = decodeImage(pngjsWrite(W, H, words, { colorType: 2, inputColorType: 2, inputHasAlpha: false, bitDepth: 16 }), 'rgb16.png');
    expect(img.data).toEqual(Uint8Array.from(words, (v) => v >> 8));
    const greyBE = randomBytes(W * H * 2, 7); // big-endian 16-bit samples
    const grey = decodeImage(handPng(W, H, 16, 0, rowsOf(greyBE, H)), 'grey16.png');
    expect(grey.data).toEqual(Uint8Array.from({ length: W * H * 3 }, (_, i) => greyBE[Math.floor(i / 3) * 2]));
  });

  it('2-bit grey: levels 0..3 become 0, 85, 170, 255', () => {
    const levels = Uint8Array.from({ length: 8 * 2 }, (_, i) => (i * 5) % 4);
    const packed = Uint8Array.from({ length: 4 }, (_, i) => (levels[4 * i] << 6) | (levels[4 * i + 1] << 4) | (levels[4 * i + 2] << 2) | levels[4 * i + 3]);
    const img = decodeImage(handPng(8, 2, 2, 0, rowsOf(packed, 2)), 'grey2.png');
    expect(img.data).toEqual(Uint8Array.from({ length: 8 * 2 * 3 }, (_, i) => levels[Math.floor(i / 3)] * 85));
  });

  it('encodePng round-trips 8-bit RGB', () => {
    const img: RgbImage = { width: W, height: H, data: rgb };
    expect(decodeImage(encodePng(img), 'roundtrip.png')).toEqual(img);
  });
});

/** A 32x16 image: quadrants red (top left), green (top right), blue (bottom left), white. */
function quadrants(): RgbImage {
  const colors = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];
  const width = 32;
  const height = 16;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(colors[(y < 8 ? 0 : 2) + (x < 16 ? 0 : 1)], (y * width + x) * 3);
  return { width, height, data };
}

function encodeJpeg(img: RgbImage, quality = 95): Uint8Array {
  const rgba = new Uint8Array(img.width * img.height * 4);
  for (let i = 0; i < img.width * img.height; i++) rgba.set([...img.data.subarray(3 * i, 3 * i + 3), 255], 4 * i);
  return new Uint8Array(jpeg.encode({ width: img.width, height: img.height, data: rgba }, quality).data);
}

/** The JPEG with an APP1 Exif segment (IFD0 holding only Orientation) right after SOI. */
function withOrientation(file: Uint8Array, orientation: number, littleEndian: boolean): Uint8Array {
  const tiff = new Uint8Array(8 + 2 + 12 + 4);
  const v = new DataView(tiff.buffer);
  tiff.set(littleEndian ? [0x49, 0x49] : [0x4d, 0x4d]);
  v.setUint16(2, 42, littleEndian);
  v.setUint32(4, 8, littleEndian);
  v.setUint16(8, 1, littleEndian); // one entry
  v.setUint16(10, 0x0112, littleEndian);
  v.setUint16(12, 3, littleEndian); // SHORT
  v.setUint32(14, 1, littleEndian);
  v.setUint16(18, orientation, littleEndian);
  const payload = concat([new Uint8Array([0x45, 0x78, 0x69, 0x66, 0, 0]), tiff]);
  const segment = concat([new Uint8Array([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 255]), payload]);
  return concat([file.subarray(0, 2), segment, file.subarray(2)]);
}

function pixel(img: RgbImage, x: number, y: number): number[] {
  return [...img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3)];
}

function expectColor(img: RgbImage, x: number, y: number, rgb: number[]): void {
  const got = pixel(img, x, y);
  expect(Math.max(...got.map((g, i) => Math.abs(g - rgb[i]))), `pixel (${x}, ${y}) = ${got}, expected about ${rgb}`).toBeLessThan(24);
}

const [RED, GREEN, BLUE, WHITE] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];

describe('JPEG decoding', () => {
  it('decodes a jpeg-js JPEG close to its source', () => {
    const r = rng(8);
    const src: RgbImage = { width: 37, height: 23, data: Uint8Array.from({ length: 37 * 23 * 3 }, (_, i) => (i % 3) * 60 + Math.floor((i / 3) % 37) * 3 + Math.floor(r() * 4)) };
    const img = decodeImage(encodeJpeg(src, 100), 'photo.jpg');
    expect([img.width, img.height]).toEqual([37, 23]);
    let maxDiff = 0;
    for (let i = 0; i < src.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(img.data[i] - src.data[i]));
    console.log(`JPEG q100 max |decoded - source| = ${maxDiff}`);
    expect(maxDiff).toBeLessThanOrEqual(16);
  });

  it('EXIF orientation 6 (rotate 90 clockwise), big-endian Exif: ignored by default, honoured with exifRotate', () => {
    const file = encodeJpeg(quadrants());
    const raw = decodeImage(withOrientation(file, 6, false), 'o6.jpg');
    expect(raw).toEqual(decodeImage(file, 'plain.jpg'));
    const img = decodeImage(withOrientation(file, 6, false), 'o6.jpg', { exifRotate: true });
    expect([raw.width, raw.height, img.width, img.height]).toEqual([32, 16, 16, 32]);
    expectColor(img, 4, 8, BLUE);
    expectColor(img, 12, 8, RED);
    expectColor(img, 4, 24, WHITE);
    expectColor(img, 12, 24, GREEN);
    for (const [x, y] of [[0, 0], [15, 0], [3, 29], [15, 31]]) expect(pixel(img, x, y)).toEqual(pixel(raw, y, raw.height - 1 - x));
  });

  it('honours EXIF orientation 3 (rotate 180), little-endian Exif, with exifRotate', () => {
    const img = decodeImage(withOrientation(encodeJpeg(quadrants()), 3, true), 'o3.jpg', { exifRotate: true });
    expect([img.width, img.height]).toEqual([32, 16]);
    expectColor(img, 8, 4, WHITE);
    expectColor(img, 24, 4, BLUE);
    expectColor(img, 8, 12, GREEN);
    expectColor(img, 24, 12, RED);
  });

  it('applyOrientation: all eight EXIF orientations', () => {
    // a b c / d e f  as pixel values 1..6 in the red channel.
    const src: RgbImage = { width: 3, height: 2, data: Uint8Array.from([1, 2, 3, 4, 5, 6].flatMap((v) => [v, 0, 0])) };
    const layout = (o: number) => {
      const img = applyOrientation(src, o);
      return { w: img.width, px: Array.from({ length: img.width * img.height }, (_, i) => img.data[3 * i]).join('') };
    };
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(layout)).toEqual([
      { w: 3, px: '123456' },
      { w: 3, px: '321654' },
      { w: 3, px: '654321' },
      { w: 3, px: '456123' },
      { w: 2, px: '142536' },
      { w: 2, px: '415263' },
      { w: 2, px: '635241' },
      { w: 2, px: '362514' },
    ]);
  });
});

describe('bad inputs: one line naming the file', () => {
  const png = pngjsWrite(W, H, randomBytes(W * H * 3, 9), { colorType: 2, inputColorType: 2, inputHasAlpha: false });

  it('0 bytes', () => {
    expect(errorOf(() => decodeImage(new Uint8Array(), 'empty.png'))).toBe('empty.png: empty file (0 bytes), not an image');
  });

  it('not an image', () => {
    expect(errorOf(() => decodeImage(new TextEncoder().encode('hello world'), 'notes.txt'))).toBe('notes.txt: not a PNG or JPEG image (starts with 68 65 6c 6c 6f 20 77 6f)');
  });

  it('truncated PNG', () => {
    const idatLength = new DataView(png.buffer).getUint32(33); // IDAT follows the IHDR
    expect(errorOf(() => decodeImage(png.subarray(0, 33 + 20), 'cut.png'))).toBe(`cut.png: truncated PNG (chunk IDAT at byte 33 needs ${12 + idatLength} bytes, the file ends after 20)`);
    expect(errorOf(() => decodeImage(png.subarray(0, png.length - 12), 'no-end.png'))).toBe(`no-end.png: truncated PNG (no IEND chunk: the file ends at byte ${png.length - 12})`);
  });

  it('corrupt PNG (bad CRC)', () => {
    const bad = png.slice();
    bad[45] ^= 0xff; // inside the IDAT data (which starts at byte 41)
    expect(errorOf(() => decodeImage(bad, 'crc.png'))).toBe('crc.png: corrupt PNG (CRC mismatch in chunk IDAT at byte 33)');
  });

  it('truncated JPEG', () => {
    const file = encodeJpeg(quadrants());
    const sos = file.findIndex((b, i) => b === 0xff && file[i + 1] === 0xda);
    const cut = Math.floor((sos + file.length) / 2);
    expect(errorOf(() => decodeImage(file.subarray(0, cut), 'cut.jpg'))).toBe(`cut.jpg: truncated JPEG (the file ends inside entropy-coded scan data, at byte ${cut}, before the EOI marker)`);
    expect(errorOf(() => decodeImage(file.subarray(0, 10), 'head.jpg'))).toBe('head.jpg: truncated JPEG (the file ends inside segment ffe0 that starts at byte 2, at byte 10, before the EOI marker)');
  });

  it('absurd dimensions, checked before decoding', () => {
    const forged = (w: number, h: number) => handPng(w, h, 8, 2, [new Uint8Array(3)]); // valid CRCs, one pixel of data
    expect(errorOf(() => decodeImage(forged(100000, 100000), 'huge.png'))).toBe('huge.png: image is 100000x100000 pixels, over the limit of 16384 pixels per side');
    expect(errorOf(() => decodeImage(forged(12000, 12000), 'big.png'))).toBe('big.png: image is 12000x12000 pixels, over the limit of 100 megapixels');
  });
});
