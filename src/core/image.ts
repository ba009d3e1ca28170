// Images on the host: the 8-bit RGB image type, and the format-level work that needs no codec:
// recognising PNG / JPEG, reading their headers (size limits, truncation, the EXIF orientation)
// before a decoder allocates anything, turning a decoder's RGBA output into RGB the way Pillow's
// convert('RGB') does, and applying the EXIF orientation. The codecs themselves (inflate, IDCT)
// live outside the core (src/node/decode.ts in Node).

/** 8-bit RGB, row-major, 3 bytes per pixel (R, G, B). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Largest accepted side, in pixels. */
export const MAX_IMAGE_SIDE = 16384;
/** Largest accepted image, in pixels (100 MP). */
export const MAX_IMAGE_PIXELS = 100_000_000;

export type ImageFormat = 'png' | 'jpeg';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function hexStart(bytes: Uint8Array): string {
  return [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** PNG or JPEG by the magic bytes; anything else is an error naming `label`. */
export function sniffImageFormat(bytes: Uint8Array, label: string): ImageFormat {
  if (bytes.length === 0) throw new Error(`${label}: empty file (0 bytes), not an image`);
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  throw new Error(`${label}: not a PNG or JPEG image (starts with ${hexStart(bytes)})`);
}

/** Rejects empty and absurd sizes before anything is decoded or allocated. */
export function checkImageSize(width: number, height: number, label: string): void {
  if (width < 1 || height < 1) throw new Error(`${label}: image is ${width}x${height} pixels, it has no pixels`);
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new Error(`${label}: image is ${width}x${height} pixels, over the limit of ${MAX_IMAGE_SIDE} pixels per side`);
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new Error(`${label}: image is ${width}x${height} pixels, over the limit of ${MAX_IMAGE_PIXELS / 1e6} megapixels`);
  }
}

const u16be = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];
const u32be = (b: Uint8Array, i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;

// ---------------------------------------------------------------------------------------------
// PNG

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA. */
  colorType: number;
  /** 0 none, 1 Adam7. */
  interlace: number;
  /** Byte ranges [start, end) of every chunk, length and CRC included, in file order. */
  chunks: { type: string; start: number; end: number }[];
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

/** CRC-32 as PNG chunks use it. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A chunk type as read from the file, printable: bytes outside printable ASCII as \xNN. */
function chunkType(bytes: Uint8Array): string {
  return [...bytes].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
}

/**
 * Walks the chunks of a PNG: the IHDR size is checked against the limits, every chunk's CRC is
 * verified, and a chunk running past the end of the file or a missing IEND is reported as truncation.
 */
export function readPngHeader(bytes: Uint8Array, label: string): PngHeader {
  const chunks: PngHeader['chunks'] = [];
  let pos = 8;
  while (pos < bytes.length) {
    if (pos + 8 > bytes.length) throw new Error(`${label}: truncated PNG (the file ends inside a chunk header at byte ${pos})`);
    const length = u32be(bytes, pos);
    const type = chunkType(bytes.subarray(pos + 4, pos + 8));
    const end = pos + 12 + length;
    if (end > bytes.length) {
      throw new Error(`${label}: truncated PNG (chunk ${type} at byte ${pos} needs ${12 + length} bytes, the file ends after ${bytes.length - pos})`);
    }
    if (crc32(bytes.subarray(pos + 4, end - 4)) !== u32be(bytes, end - 4)) throw new Error(`${label}: corrupt PNG (CRC mismatch in chunk ${type} at byte ${pos})`);
    chunks.push({ type, start: pos, end });
    pos = end;
    if (type === 'IEND') break;
  }
  const ihdr = chunks[0];
  if (!ihdr || ihdr.type !== 'IHDR' || ihdr.end - ihdr.start < 25) throw new Error(`${label}: corrupt PNG (no IHDR chunk first)`);
  if (chunks[chunks.length - 1].type !== 'IEND') throw new Error(`${label}: truncated PNG (no IEND chunk: the file ends at byte ${bytes.length})`);
  const d = ihdr.start + 8;
  const header: PngHeader = { width: u32be(bytes, d), height: u32be(bytes, d + 4), bitDepth: bytes[d + 8], colorType: bytes[d + 9], interlace: bytes[d + 12], chunks };
  checkImageSize(header.width, header.height, label);
  return header;
}

/**
 * The PNG without its tRNS chunk when that chunk only marks one grey / RGB colour as transparent
 * (colour types 0 and 2). Pillow's convert('RGB') keeps such pixels' colour; a decoder that expands
 * the colour key to alpha may blacken them, and alpha is dropped anyway. Palette tRNS is kept
 * (it only sets alpha).
 */
export function pngWithoutColorKey(bytes: Uint8Array, header: PngHeader): Uint8Array {
  if (header.colorType !== 0 && header.colorType !== 2) return bytes;
  const keep = header.chunks.filter((c) => c.type !== 'tRNS');
  if (keep.length === header.chunks.length) return bytes;
  const out = new Uint8Array(8 + keep.reduce((n, c) => n + c.end - c.start, 0));
  out.set(bytes.subarray(0, 8));
  let pos = 8;
  for (const c of keep) {
    out.set(bytes.subarray(c.start, c.end), pos);
    pos += c.end - c.start;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// JPEG

export interface JpegHeader {
  width: number;
  height: number;
  /** EXIF orientation 1..8 (1 when there is no EXIF, or it is unreadable). */
  orientation: number;
  /** The frame header's marker (0xc0 baseline, 0xc2 progressive, ...). */
  sof: number;
  /** Arithmetic entropy coding (SOF9-11, SOF13-15). */
  arithmetic: boolean;
}

const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
const isStandalone = (m: number) => m === 0x01 || (m >= 0xd0 && m <= 0xd7);

/**
 * Walks the JPEG markers from SOI to EOI: the frame size (SOF) is checked against the limits, the
 * EXIF orientation is read from APP1, and a file that ends before EOI (inside a segment or inside
 * entropy-coded data) is reported as truncated, as Pillow does ("image file is truncated").
 */
export function readJpegHeader(bytes: Uint8Array, label: string): JpegHeader {
  const truncated = (where: string) => new Error(`${label}: truncated JPEG (the file ends ${where}, at byte ${bytes.length}, before the EOI marker)`);
  let size: { width: number; height: number; sof: number } | undefined;
  let orientation = 1;
  let pos = 2;
  for (;;) {
    if (pos >= bytes.length) throw truncated('between segments');
    if (bytes[pos] !== 0xff) throw new Error(`${label}: corrupt JPEG (no marker at byte ${pos})`);
    while (pos < bytes.length && bytes[pos] === 0xff) pos++; // fill bytes
    if (pos >= bytes.length) throw truncated('inside a marker');
    const marker = bytes[pos++];
    if (marker === 0xd9) break;
    if (isStandalone(marker)) continue;
    if (pos + 2 > bytes.length) throw truncated('inside a segment length');
    const length = u16be(bytes, pos);
    if (length < 2) throw new Error(`${label}: corrupt JPEG (segment ff${marker.toString(16)} at byte ${pos - 2} has length ${length})`);
    const end = pos + length;
    if (end > bytes.length) throw truncated(`inside segment ff${marker.toString(16)} that starts at byte ${pos - 2}`);
    const body = bytes.subarray(pos + 2, end);
    if (isSof(marker) && !size && body.length >= 5) size = { height: u16be(body, 1), width: u16be(body, 3), sof: marker };
    if (marker === 0xe1 && orientation === 1) orientation = exifOrientation(body);
    pos = end;
    if (marker === 0xda) pos = skipEntropyData(bytes, pos, truncated);
  }
  if (!size) throw new Error(`${label}: corrupt JPEG (no frame header SOF before EOI)`);
  checkImageSize(size.width, size.height, label);
  return { ...size, orientation, arithmetic: size.sof >= 0xc9 };
}

/** Position of the first marker after entropy-coded data (skipping stuffed 0xff00 and RSTn). */
function skipEntropyData(bytes: Uint8Array, pos: number, truncated: (where: string) => Error): number {
  for (; pos + 1 < bytes.length; pos++) {
    if (bytes[pos] !== 0xff) continue;
    const next = bytes[pos + 1];
    if (next !== 0x00 && !(next >= 0xd0 && next <= 0xd7)) return pos;
  }
  throw truncated('inside entropy-coded scan data');
}

/** Orientation tag 0x0112 of IFD0 in an APP1 "Exif\0\0" payload; 1 when absent or malformed. */
export function exifOrientation(app1: Uint8Array): number {
  const header = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
  if (app1.length < 14 || !header.every((b, i) => app1[i] === b)) return 1;
  const tiff = app1.subarray(6);
  const little = tiff[0] === 0x49 && tiff[1] === 0x49; // "II"
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return 1; // "MM"
  const u16 = (i: number) => (little ? tiff[i] | (tiff[i + 1] << 8) : u16be(tiff, i));
  const u32 = (i: number) => (little ? (tiff[i] | (tiff[i + 1] << 8) | (tiff[i + 2] << 16) | (tiff[i + 3] << 24)) >>> 0 : u32be(tiff, i));
  if (u16(2) !== 42) return 1;
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return 1;
  const count = u16(ifd);
  for (let e = 0; e < count; e++) {
    const at = ifd + 2 + 12 * e;
    if (at + 12 > tiff.length) return 1;
    if (u16(at) !== 0x0112) continue;
    const value = u16(at + 8); // type SHORT, count 1: the value sits in the entry
    return u16(at + 2) === 3 && value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}

/**
 * The image as it should be displayed for EXIF orientation 1..8 (what Pillow's
 * ImageOps.exif_transpose does): 2 mirror left-right, 3 rotate 180, 4 mirror top-bottom,
 * 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
 */
export function applyOrientation(img: RgbImage, orientation: number): RgbImage {
  if (orientation === 1) return img;
  const { width: W, height: H } = img;
  const swap = orientation >= 5;
  const outW = swap ? H : W;
  const outH = swap ? W : H;
  // Source pixel of output (x, y), per orientation.
  const source: Record<number, (x: number, y: number) => [number, number]> = {
    2: (x, y) => [W - 1 - x, y],
    3: (x, y) => [W - 1 - x, H - 1 - y],
    4: (x, y) => [x, H - 1 - y],
    5: (x, y) => [y, x],
    6: (x, y) => [y, H - 1 - x],
    7: (x, y) => [W - 1 - y, H - 1 - x],
    8: (x, y) => [W - 1 - y, x],
  };
  const from = source[orientation];
  if (!from) throw new Error(`EXIF orientation ${orientation} is not in 1..8`);
  const data = new Uint8Array(outW * outH * 3);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const [sx, sy] = from(x, y);
      const s = (sy * W + sx) * 3;
      data.set(img.data.subarray(s, s + 3), (y * outW + x) * 3);
    }
  }
  return { width: outW, height: outH, data };
}

// ---------------------------------------------------------------------------------------------
// Pixels

/**
 * RGB from a decoder's RGBA samples (8- or 16-bit, 4 per pixel): alpha is dropped, as Pillow's
 * convert('RGB') does (no compositing onto a background). 16-bit samples keep their high byte
 * (>> 8), which is what Pillow's 16-bit RGB / RGBA / grey+alpha PNG modes do when they load.
 * (Pillow opens a 16-bit grey PNG as mode 'I' and convert('RGB') then CLIPS it to 0..255, which
 * whitens almost every pixel; here 16-bit grey is treated like the other 16-bit modes, by >> 8.)
 */
export function rgbFromRgba(width: number, height: number, rgba: Uint8Array | Uint16Array): RgbImage {
  const n = width * height;
  if (rgba.length !== n * 4) throw new Error(`rgbFromRgba: ${rgba.length} samples for ${width}x${height} RGBA`);
  const shift = rgba instanceof Uint16Array ? 8 : 0;
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    data[3 * i] = rgba[4 * i] >> shift;
    data[3 * i + 1] = rgba[4 * i + 1] >> shift;
    data[3 * i + 2] = rgba[4 * i + 2] >> shift;
  }
  return { width, height, data };
}

/** Checks that an RgbImage is consistent (sizes, buffer length). */
export function checkRgbImage(img: RgbImage, label: string): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width < 1 || img.height < 1) {
    throw new Error(`${label}: image size ${img.width}x${img.height} is not a positive integer size`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new Error(`${label}: ${img.data.length} bytes of RGB data for ${img.width}x${img.height} (needs ${img.width * img.height * 3})`);
  }
}
