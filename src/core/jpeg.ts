// JPEG pixels exactly as Pillow 9.4 decodes them. Pillow's JPEG decoder is the system libjpeg-turbo
// (libjpeg62-turbo 2.1.5 in the official Debian 12 environment) with its defaults: the islow
// integer IDCT and "fancy" (triangle-filter) chroma upsampling. This module drives the same code,
// libjpeg-turbo compiled to WebAssembly (npm `@cwasm/jpeg-turbo`: its TurboJPEG decompressor, C
// code paths, no SIMD; islow and fancy upsampling are its defaults too), through the module's raw
// exports, so that it runs synchronously in Node and with any instantiation in a browser.
// Measured against Pillow: identical RGB on every subsampling (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1),
// grey, progressive, restart markers, Adobe CMYK / YCCK and odd sizes (test/jpeg.test.ts).
//
// 4-component JPEGs: Pillow reads them as Adobe-inverted CMYK (rawmode "CMYK;I"; libjpeg turns
// YCCK into CMYK) and convert('RGB') computes, per channel, nk - nk * c / 255 (rounded as its
// MULDIV255) with nk = 255 - k: the same is done here on libjpeg-turbo's CMYK output.
// Arithmetic-coded JPEGs (SOF9-11, 13-15) are not in that build: refused by name (readJpegForDecode).
//
// The core holds no Node import: the caller hands in the compiled module (src/node/decode.ts reads
// the .wasm file; the browser bundle embeds it).

import { applyOrientation, checkRgbImage, readJpegHeader, type JpegHeader, type RgbImage } from './image.js';

/** The exports of @cwasm/jpeg-turbo's jpeg-turbo.wasm that are used here. */
interface TurboExports {
  memory: WebAssembly.Memory;
  malloc(n: number): number;
  free(p: number): void;
  tjInitDecompress(): number;
  tjDestroy(h: number): number;
  tjDecompressHeader3(h: number, buf: number, size: number, w: number, hgt: number, subsamp: number, colorspace: number): number;
  tjDecompress2(h: number, buf: number, size: number, dst: number, w: number, pitch: number, hgt: number, pixelFormat: number, flags: number): number;
}

/** Raised through the wasm stack by libjpeg's error_exit (its longjmp): the instance is dropped after it. */
class LibjpegError extends Error {}

/**
 * The imports the module needs. libjpeg reports a fatal error with longjmp back to TurboJPEG's
 * setjmp; this build leaves both to the host, and here longjmp throws, unwinding the wasm stack
 * (the instance is then discarded: its heap and stack pointer are no longer trusted).
 */
export function jpegTurboImports(): JpegTurboImports {
  let memory: WebAssembly.Memory | undefined;
  const imports = {
    env: {
      setjmp: () => 0,
      longjmp: () => {
        throw new LibjpegError('libjpeg-turbo stopped on an error in the data');
      },
    },
    wasi_snapshot_preview1: {
      environ_sizes_get: (countPtr: number, sizePtr: number) => {
        // No environment variables.
        if (memory) {
          const v = new DataView(memory.buffer);
          v.setUint32(countPtr >>> 0, 0, true);
          v.setUint32(sizePtr >>> 0, 0, true);
        }
        return 0;
      },
      environ_get: () => 0,
      proc_exit: () => {
        throw new LibjpegError('libjpeg-turbo exited');
      },
      fd_close: () => 0,
      fd_seek: () => 0,
      // Messages to stderr (none are expected: TurboJPEG formats them into a buffer) are dropped,
      // but reported as written, so that the C library does not retry forever.
      fd_write: (_fd: number, iovs: number, iovsLen: number, nwritten: number) => {
        if (!memory) return 0;
        const v = new DataView(memory.buffer);
        let n = 0;
        for (let i = 0; i < iovsLen; i++) n += v.getUint32((iovs >>> 0) + 8 * i + 4, true);
        v.setUint32(nwritten >>> 0, n, true);
        return 0;
      },
    },
  };
  return {
    imports,
    bindMemory(m: WebAssembly.Memory) {
      memory = m;
    },
  };
}

/** The import object for WebAssembly.instantiate, and the hook that gives the stubs the instance's memory. */
export interface JpegTurboImports {
  imports: WebAssembly.Imports;
  /** Called once the instance exists, so that the WASI stubs can reach its memory. */
  bindMemory(m: WebAssembly.Memory): void;
}

/** An instance of the module, with its memory bound for the stubs. */
export interface JpegTurbo {
  exports: TurboExports;
  /**
   * Set when the instance must not be used again: a call threw through the wasm stack, or its
   * memory was handed over as a large image's pixels (no copy).
   */
  unusable: boolean;
}

/** Wraps a new instance made with `host.imports` (from jpegTurboImports()). */
export function jpegTurbo(instance: WebAssembly.Instance, host: JpegTurboImports): JpegTurbo {
  const exports = instance.exports as unknown as TurboExports;
  host.bindMemory(exports.memory);
  return { exports, unusable: false };
}

/** A new instance, synchronously (Node; in a browser use WebAssembly.instantiate + jpegTurbo). */
export function jpegTurboSync(module: WebAssembly.Module): JpegTurbo {
  const host = jpegTurboImports();
  return jpegTurbo(new WebAssembly.Instance(module, host.imports), host);
}

const TJCS_CMYK = 3;
const TJCS_YCCK = 4;
const TJPF_RGB = 0;
const TJPF_CMYK = 11;
/** RGB outputs from this size on are returned in place, inside the instance's memory. */
const HAND_OVER_BYTES = 32 << 20;

/**
 * The JPEG as 8-bit RGB, as Pillow's Image.open(...).convert('RGB') gives it. The caller has
 * checked the file's structure and size (readJpegHeader). Throws plain messages (no label); after
 * a throw, `turbo` must not be used again.
 */
export function decodeJpegWith(turbo: JpegTurbo, bytes: Uint8Array): RgbImage {
  if (turbo.unusable) throw new Error('decodeJpegWith: this libjpeg-turbo instance is retired (an error, or its memory holds an image); make a new one');
  const e = turbo.exports;
  const handle = e.tjInitDecompress();
  if (!handle) throw new Error('libjpeg-turbo could not allocate a decompressor');
  const input = e.malloc(bytes.length) >>> 0;
  const meta = e.malloc(16) >>> 0;
  let output = 0;
  try {
    if (!input || !meta) throw new Error(`out of WebAssembly memory for ${bytes.length} bytes of JPEG`);
    new Uint8Array(e.memory.buffer, input, bytes.length).set(bytes);
    let status: number;
    try {
      status = e.tjDecompressHeader3(handle, input, bytes.length, meta, meta + 4, meta + 8, meta + 12);
    } catch (err) {
      turbo.unusable = true;
      throw err instanceof LibjpegError ? new Error('libjpeg-turbo cannot read the header') : err;
    }
    if (status !== 0) throw new Error('libjpeg-turbo cannot read the header');
    const [width, height, , colorspace] = new Int32Array(e.memory.buffer, meta, 4);
    const four = colorspace === TJCS_CMYK || colorspace === TJCS_YCCK;
    const channels = four ? 4 : 3;
    const n = width * height;
    output = e.malloc(n * channels) >>> 0;
    if (!output) throw new Error(`out of WebAssembly memory for ${width}x${height} pixels`);
    // Non-zero without a throw is a warning (corrupt entropy data and the like, that libjpeg
    // decodes through as Pillow does); fatal errors come back through longjmp.
    try {
      e.tjDecompress2(handle, input, bytes.length, output, width, width * channels, height, four ? TJPF_CMYK : TJPF_RGB, 0);
    } catch (err) {
      turbo.unusable = true;
      throw err instanceof LibjpegError ? new Error('libjpeg-turbo cannot decode the data') : err;
    }
    // Grey comes out as RGB with each sample replicated: Pillow's L -> RGB.
    const src = new Uint8Array(e.memory.buffer, output, n * channels);
    if (!four) {
      if (n * 3 < HAND_OVER_BYTES) return { width, height, data: src.slice() };
      // A large image keeps its pixels where libjpeg wrote them: no second copy at the peak.
      // The instance's memory now belongs to the image (freed with it); the instance is retired.
      turbo.unusable = true;
      return { width, height, data: src };
    }
    return { width, height, data: rgbFromAdobeCmyk(src) };
  } finally {
    // Not after a throw through the wasm stack (the heap is not trusted), nor once the memory
    // holds a returned image.
    if (!turbo.unusable) {
      e.free(input);
      e.free(meta);
      if (output) e.free(output);
      e.tjDestroy(handle);
    }
  }
}

/**
 * libjpeg's CMYK output of an Adobe file (inverted samples) -> RGB as Pillow: its "CMYK;I" unpacker
 * inverts, then convert('RGB') (Convert.c cmyk2rgb): channel = nk - MULDIV255(c, nk), nk = 255 - k.
 */
export function rgbFromAdobeCmyk(inverted: Uint8Array): Uint8Array {
  const n = inverted.length >> 2;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const nk = inverted[4 * i + 3]; // 255 - k, k = 255 - stored
    for (let c = 0; c < 3; c++) {
      const t = (255 - inverted[4 * i + c]) * nk + 128;
      const v = nk - (((t >> 8) + t) >> 8);
      out[3 * i + c] = v < 0 ? 0 : v;
    }
  }
  return out;
}

/**
 * A JPEG file's header, read and checked before any decoder runs (structure, truncation, size
 * limits: readJpegHeader); arithmetic-coded files, which this libjpeg-turbo build lacks, are
 * refused by name. Every failure is one line naming `label`.
 */
export function readJpegForDecode(bytes: Uint8Array, label: string): JpegHeader {
  const header = readJpegHeader(bytes, label);
  if (header.arithmetic) throw new Error(`${label}: arithmetic-coded JPEG (SOF${header.sof - 0xc0}) is not supported`);
  return header;
}

/**
 * The JPEG (its header from readJpegForDecode) as Pillow's RGB, turned upright by its EXIF
 * orientation only with `exifRotate`. A decoder failure is `LABEL: corrupt JPEG (...)`; `turbo`
 * is marked unusable when it must not be reused.
 */
export function decodeJpegFile(turbo: JpegTurbo, bytes: Uint8Array, header: JpegHeader, label: string, exifRotate = false): RgbImage {
  let img: RgbImage;
  try {
    img = decodeJpegWith(turbo, bytes);
    if (img.width !== header.width || img.height !== header.height) {
      throw new Error(`libjpeg-turbo decoded ${img.width}x${img.height}, the frame header says ${header.width}x${header.height}`);
    }
    checkRgbImage(img, label);
  } catch (e) {
    throw new Error(`${label}: corrupt JPEG (${(e as Error).message})`);
  }
  return exifRotate ? applyOrientation(img, header.orientation) : img;
}
