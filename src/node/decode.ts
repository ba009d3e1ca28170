// Image files in Node: PNG through pngjs, JPEG through jpeg-js, PNG out. The format checks
// (limits, truncation, EXIF orientation, RGBA -> RGB) are the core's (src/core/image.ts); this
// module only runs the codecs, so that a browser build can swap it for createImageBitmap.
//
// PNG pixels equal Pillow 9.4's Image.open(...).convert('RGB') for every colour class (checked
// against it), except 16-bit grey (see rgbFromRgba). JPEG pixels come from jpeg-js, whose IDCT and
// nearest-neighbour chroma upsampling differ from libjpeg's (Pillow's): within 3 levels for 4:4:4,
// but up to tens of levels at sharp colour edges of 4:2:0 images (libjpeg's "fancy" upsampling).
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import {
  MAX_IMAGE_PIXELS,
  applyOrientation,
  checkRgbImage,
  pngWithoutColorKey,
  readJpegHeader,
  readPngHeader,
  rgbFromRgba,
  sniffImageFormat,
  type RgbImage,
} from '../core/image.js';

export interface DecodeOptions {
  /** Leave JPEGs as stored, ignoring their EXIF orientation (the official PIL pipeline ignores it). */
  ignoreExifOrientation?: boolean;
}

/** A PNG or JPEG file as 8-bit RGB; every failure is one line that names `label`. */
export function decodeImage(bytes: Uint8Array, label: string, opts: DecodeOptions = {}): RgbImage {
  return sniffImageFormat(bytes, label) === 'png' ? decodePng(bytes, label) : decodeJpeg(bytes, label, opts);
}

function decodePng(bytes: Uint8Array, label: string): RgbImage {
  const header = readPngHeader(bytes, label);
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

function decodeJpeg(bytes: Uint8Array, label: string, opts: DecodeOptions): RgbImage {
  const header = readJpegHeader(bytes, label);
  let img: RgbImage;
  try {
    const out = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
      maxMemoryUsageInMB: 4096,
    });
    img = { width: out.width, height: out.height, data: out.data };
    checkRgbImage(img, label);
  } catch (e) {
    throw new Error(`${label}: corrupt JPEG (${(e as Error).message})`);
  }
  return opts.ignoreExifOrientation ? img : applyOrientation(img, header.orientation);
}

/** 8-bit RGB PNG (colour type 2). */
export function encodePng(img: RgbImage): Uint8Array {
  checkRgbImage(img, 'encodePng');
  const meta = { width: img.width, height: img.height, data: Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength) };
  return new Uint8Array(PNG.sync.write(meta as PNG, { colorType: 2, inputColorType: 2, inputHasAlpha: false }));
}
