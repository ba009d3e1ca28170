// Image files in Node: PNG through pngjs, JPEG through libjpeg-turbo in WebAssembly, PNG out. The
// format checks (limits, truncation, EXIF orientation, RGBA -> RGB) are the core's
// (src/core/image.ts, src/core/jpeg.ts); this module only runs the codecs (the browser build
// decodes JPEG with the same WebAssembly, other formats with createImageBitmap).
// The common PNGs (8-bit grey / RGB / grey+alpha / RGBA, not interlaced) skip pngjs, whose
// inflated, unfiltered and RGBA copies cost ~13 bytes per pixel: they are inflated into one buffer
// and unfiltered row by row into RGB over the rows already read (~4 bytes per pixel at most).
//
// PNG pixels equal Pillow 9.4's Image.open(...).convert('RGB') for every colour class (checked
// against it), except 16-bit grey (see rgbFromRgba). JPEG pixels equal Pillow's too: they come from
// libjpeg-turbo, Pillow's own JPEG decoder, compiled to WebAssembly (npm @cwasm/jpeg-turbo, driven
// by src/core/jpeg.ts; test/jpeg.test.ts compares every kind of JPEG with Pillow 9.4). EXIF
// orientation is ignored by default, as Pillow's Image.open does; `exifRotate: true` applies it.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { decodeJpegFile, jpegTurboSync, readJpegForDecode, type JpegTurbo } from '../core/jpeg.js';
import {
  checkRgbImage,
  pngWithoutColorKey,
  readPngHeader,
  rgbFromRgba,
  sniffImageFormat,
  type PngHeader,
  type RgbImage,
} from '../core/image.js';

export interface DecodeOptions {
  /**
   * Turn JPEGs upright by their EXIF orientation (Pillow's ImageOps.exif_transpose). Off by
   * default: the official pipeline (Pillow's Image.open) leaves the pixels as stored.
   */
  exifRotate?: boolean;
}

/** A PNG or JPEG file as 8-bit RGB; every failure is one line that names `label`. */
export function decodeImage(bytes: Uint8Array, label: string, opts: DecodeOptions = {}): RgbImage {
  return sniffImageFormat(bytes, label) === 'png' ? decodePng(bytes, label) : decodeJpeg(bytes, label, opts);
}

function decodePng(bytes: Uint8Array, label: string): RgbImage {
  const header = readPngHeader(bytes, label);
  const lean = decodePngLean(bytes, header);
  if (lean) return lean;
  const file = pngWithoutColorKey(bytes, header);
  let png: { width: number; height: number; data: Uint8Array | Uint16Array };
  try {
    // 16-bit samples are kept as they are (a Uint16Array) for the high-byte rule; 1/2/4-bit grey
    // is scaled to 0..255 (v * 255 / (2^depth - 1), exact, as Pillow's L;1 / L;2 / L;4 unpackers).
    png = PNG.sync.read(Buffer.from(file.buffer, file.byteOffset, file.byteLength), { skipRescale: header.bitDepth === 16 });
  } catch (e) {
    throw new Error(`${label}: corrupt PNG (${(e as Error).message})`);
  }
  return rgbFromRgba(png.width, png.height, png.data);
}

/** Samples per pixel of the 8-bit colour types decodePngLean takes: grey, RGB, grey+alpha, RGBA. */
const LEAN_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

/**
 * An 8-bit, non-interlaced grey / RGB / grey+alpha / RGBA PNG as RGB (alpha dropped, grey
 * replicated, a colour key ignored: Pillow's convert('RGB')). The scanlines [H, 1 + W * channels]
 * are inflated into one buffer; each row is unfiltered into a row buffer and written as RGB over
 * the rows already read (RGB, RGBA) or into a new image (grey). undefined for every other kind of
 * PNG and for data that does not inflate to exactly the scanlines: pngjs decodes those, or names
 * what is wrong with them.
 */
function decodePngLean(file: Uint8Array, header: PngHeader): RgbImage | undefined {
  const channels = LEAN_CHANNELS[header.colorType];
  if (!channels || header.bitDepth !== 8 || header.interlace !== 0) return undefined;
  const { width: W, height: H } = header;
  const rowBytes = W * channels;
  const size = (rowBytes + 1) * H;
  const idat = Buffer.concat(header.chunks.filter((c) => c.type === 'IDAT').map((c) => file.subarray(c.start + 8, c.end - 4)));
  let raw: Buffer;
  try {
    // One output chunk of the exact size: no list of chunks concatenated at the end.
    raw = inflateSync(idat, { chunkSize: Math.max(64, size + 1), maxOutputLength: size });
  } catch {
    return undefined;
  }
  if (raw.length !== size) return undefined;
  const out = channels >= 3 ? new Uint8Array(raw.buffer, raw.byteOffset, W * H * 3) : new Uint8Array(W * H * 3);
  let above = new Uint8Array(rowBytes);
  let row = new Uint8Array(rowBytes);
  for (let y = 0; y < H; y++) {
    const at = y * (rowBytes + 1);
    if (!unfilter(raw[at], raw.subarray(at + 1, at + 1 + rowBytes), above, channels, row)) return undefined;
    // RGB row y ends at 3W(y + 1), before scanline y + 1 starts: nothing unread is overwritten.
    writeRgb(row, channels, out, 3 * W * y);
    [above, row] = [row, above];
  }
  return { width: W, height: H, data: out };
}

/** PNG filter `type` (0..4) undone on one scanline: `line` -> `out`, given the unfiltered row `above`. */
function unfilter(type: number, line: Uint8Array, above: Uint8Array, bpp: number, out: Uint8Array): boolean {
  const n = line.length;
  const left = (i: number) => (i >= bpp ? out[i - bpp] : 0);
  if (type === 0) out.set(line);
  else if (type === 1) for (let i = 0; i < n; i++) out[i] = line[i] + left(i);
  else if (type === 2) for (let i = 0; i < n; i++) out[i] = line[i] + above[i];
  else if (type === 3) for (let i = 0; i < n; i++) out[i] = line[i] + ((left(i) + above[i]) >> 1);
  else if (type === 4) {
    for (let i = 0; i < n; i++) {
      const a = left(i);
      const b = above[i];
      const c = i >= bpp ? above[i - bpp] : 0;
      const pa = Math.abs(b - c);
      const pb = Math.abs(a - c);
      const pc = Math.abs(a + b - 2 * c);
      out[i] = line[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
    }
  } else return false;
  return true;
}

/** One unfiltered row of 1..4 samples per pixel as RGB at `out[at]` (grey replicated, alpha dropped). */
function writeRgb(row: Uint8Array, channels: number, out: Uint8Array, at: number): void {
  if (channels === 3) {
    out.set(row, at);
    return;
  }
  const grey = channels <= 2;
  for (let s = 0; s < row.length; s += channels, at += 3) {
    out[at] = row[s];
    out[at + 1] = row[grey ? s : s + 1];
    out[at + 2] = row[grey ? s : s + 2];
  }
}

let wasmModule: WebAssembly.Module | undefined;
let turbo: JpegTurbo | undefined;
/** An instance whose memory grew past this is dropped after its image (wasm memory never shrinks). */
const KEEP_INSTANCE_BYTES = 64 << 20;

/** The compiled libjpeg-turbo module (@cwasm/jpeg-turbo's jpeg-turbo.wasm), read and compiled once. */
function jpegModule(): WebAssembly.Module {
  if (!wasmModule) {
    const path = createRequire(import.meta.url).resolve('@cwasm/jpeg-turbo/jpeg-turbo.wasm');
    wasmModule = new WebAssembly.Module(readFileSync(path));
  }
  return wasmModule;
}

function decodeJpeg(bytes: Uint8Array, label: string, opts: DecodeOptions): RgbImage {
  // Structure, truncation and size limits first, before libjpeg allocates anything.
  const header = readJpegForDecode(bytes, label);
  const t = turbo && !turbo.unusable ? turbo : (turbo = jpegTurboSync(jpegModule()));
  try {
    return decodeJpegFile(t, bytes, header, label, opts.exifRotate);
  } finally {
    if (t.unusable || t.exports.memory.buffer.byteLength > KEEP_INSTANCE_BYTES) turbo = undefined;
  }
}

/** 8-bit RGB PNG (colour type 2). */
export function encodePng(img: RgbImage): Uint8Array {
  checkRgbImage(img, 'encodePng');
  const meta = { width: img.width, height: img.height, data: Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength) };
  return new Uint8Array(PNG.sync.write(meta as PNG, { colorType: 2, inputColorType: 2, inputHasAlpha: false }));
}
