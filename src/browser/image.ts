// Images in the browser: any image the page has (a File/Blob, ImageBitmap, <img>, <canvas>,
// OffscreenCanvas, VideoFrame, ImageData) to 8-bit RGB, and the model's reconstruction back to
// pixels on a canvas.
//
// JPEG files (a File/Blob holding JPEG bytes) are decoded by libjpeg-turbo in WebAssembly
// (src/browser/jpeg.ts): pixels identical to Pillow's, as in Node. Other files go through the
// browser's codecs (createImageBitmap). EXIF orientation is ignored by default, as the official
// pipeline's Pillow Image.open does; `exifRotate: true` turns images upright. (Images the page has
// already decoded, an <img> or a canvas, come as the browser shows them.)
//
// RGB is read through WebGPU when a device is given (copyExternalImageToTexture into an rgba8unorm
// texture with premultipliedAlpha: false, so semi-transparent pixels keep their exact colour;
// alpha is then dropped as Pillow's convert('RGB') does), else through a 2D canvas (getImageData;
// exact for opaque images).
import type { Gpu } from '../core/gpu.js';
import { checkImageSize, rgbFromRgba, type RgbImage } from '../core/image.js';
import { KernelLibrary, type ShaderSources } from '../core/kernels.js';
import { ImageBatch, preprocess, unpackRgb8 } from '../core/preprocess.js';
import { Program } from '../core/program.js';
import { decodeJpegBytes } from './jpeg.js';
import { SHADERS } from './shaders.js';

export type { RgbImage };

export type ImageInput = Blob | ImageBitmap | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | VideoFrame | ImageData | RgbImage;

type Drawable = Exclude<ImageInput, Blob | ImageData | RgbImage>;

function isRgbImage(x: ImageInput): x is RgbImage {
  return !(x instanceof Blob) && 'data' in x && x.data instanceof Uint8Array && !(typeof ImageData !== 'undefined' && x instanceof ImageData);
}

function sizeOf(src: Drawable): { width: number; height: number } {
  if (typeof VideoFrame !== 'undefined' && src instanceof VideoFrame) return { width: src.displayWidth, height: src.displayHeight };
  if (typeof HTMLImageElement !== 'undefined' && src instanceof HTMLImageElement) return { width: src.naturalWidth, height: src.naturalHeight };
  const c = src as ImageBitmap | HTMLCanvasElement | OffscreenCanvas;
  return { width: c.width, height: c.height };
}

export interface ImageReadOptions {
  /** Turn images upright by their EXIF orientation. Off by default, as the official pipeline (Pillow's Image.open). */
  exifRotate?: boolean;
}

/** The Blob's JPEG bytes when it starts like a JPEG (FF D8 FF), else undefined. */
async function jpegBytesOf(blob: Blob): Promise<Uint8Array | undefined> {
  const head = new Uint8Array(await blob.slice(0, 3).arrayBuffer());
  if (head.length < 3 || head[0] !== 0xff || head[1] !== 0xd8 || head[2] !== 0xff) return undefined;
  return new Uint8Array(await blob.arrayBuffer());
}

const blobName = (blob: Blob) => (blob as File).name ?? 'image';

/**
 * Decodes a File/Blob to an ImageBitmap: no colour conversion, alpha not premultiplied, EXIF
 * orientation applied only with `exifRotate`. JPEG files are decoded by libjpeg-turbo (Pillow's
 * pixels); other formats by the browser's codecs (createImageBitmap with imageOrientation 'none'
 * unless exifRotate; Chromium 156 still turns such a file upright by its EXIF orientation).
 */
export async function decodeImage(blob: Blob, opts: ImageReadOptions = {}): Promise<ImageBitmap> {
  const jpeg = await jpegBytesOf(blob);
  if (jpeg) return createImageBitmap(rgbToImageData(await decodeJpegBytes(jpeg, blobName(blob), opts.exifRotate)), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    return await createImageBitmap(blob, { imageOrientation: opts.exifRotate ? 'from-image' : 'none', colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    throw new Error(`${blobName(blob)}: the browser cannot decode it (${(e as Error).message})`);
  }
}

/**
 * Any page image -> 8-bit RGB. With `gpu`, pixels are read through WebGPU (exact for transparent
 * pixels too). A JPEG File/Blob is decoded by libjpeg-turbo (Pillow's pixels); `exifRotate` turns
 * File/Blob images upright by their EXIF orientation (off by default, as Pillow's Image.open).
 */
export async function imageToRgb(input: ImageInput, opts: { gpu?: Gpu } & ImageReadOptions = {}): Promise<RgbImage> {
  if (isRgbImage(input)) return input;
  if (typeof ImageData !== 'undefined' && input instanceof ImageData) {
    return rgbFromRgba(input.width, input.height, new Uint8Array(input.data.buffer, input.data.byteOffset, input.data.byteLength));
  }
  if (input instanceof Blob) {
    const jpeg = await jpegBytesOf(input);
    if (jpeg) return decodeJpegBytes(jpeg, blobName(input), opts.exifRotate);
    const bitmap = await decodeImage(input, opts);
    try {
      return await imageToRgb(bitmap, opts);
    } finally {
      bitmap.close();
    }
  }
  const src = input as Drawable;
  if (typeof HTMLImageElement !== 'undefined' && src instanceof HTMLImageElement && !src.complete) await src.decode();
  const { width, height } = sizeOf(src);
  checkImageSize(width, height, 'image');
  if (opts.gpu) {
    try {
      return await readThroughGpu(opts.gpu, src, width, height);
    } catch (e) {
      // Some sources cannot be copied on some adapters (e.g. a VideoFrame on SwiftShader): use the 2D canvas.
      if (!(e instanceof DOMException)) throw e;
    }
  }
  return readThroughCanvas(src, width, height);
}

function readThroughCanvas(src: Drawable, width: number, height: number): RgbImage {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true, colorSpace: 'srgb' });
  if (!ctx) throw new Error('no 2D canvas context');
  ctx.drawImage(src as CanvasImageSource, 0, 0, width, height);
  const rgba = ctx.getImageData(0, 0, width, height, { colorSpace: 'srgb' }).data;
  return rgbFromRgba(width, height, new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength));
}

async function readThroughGpu(gpu: Gpu, src: Drawable, width: number, height: number): Promise<RgbImage> {
  const device = gpu.device;
  const bytesPerRow = Math.ceil((width * 4) / 256) * 256;
  const texture = device.createTexture({
    label: 'input image',
    size: [width, height],
    format: 'rgba8unorm',
    usage: GPUTextureUsage.COPY_DST | GPUTextureUsage.COPY_SRC | GPUTextureUsage.RENDER_ATTACHMENT | GPUTextureUsage.TEXTURE_BINDING,
  });
  const buffer = device.createBuffer({ label: 'input image readback', size: bytesPerRow * height, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  try {
    // The scope holds the synchronous copy and submit only (see Gpu.scoped); the readback waits after.
    await gpu.scoped('image upload (copyExternalImageToTexture)', () => {
      device.queue.copyExternalImageToTexture({ source: src as GPUCopyExternalImageSource }, { texture, premultipliedAlpha: false, colorSpace: 'srgb' }, [width, height]);
      const enc = device.createCommandEncoder({ label: 'input image readback' });
      enc.copyTextureToBuffer({ texture }, { buffer, bytesPerRow, rowsPerImage: height }, [width, height]);
      device.queue.submit([enc.finish()]);
    });
    await gpu.untilLost('image upload', buffer.mapAsync(GPUMapMode.READ));
    const padded = new Uint8Array(buffer.getMappedRange());
    const rgba = new Uint8Array(width * height * 4);
    for (let y = 0; y < height; y++) rgba.set(padded.subarray(y * bytesPerRow, y * bytesPerRow + width * 4), y * width * 4);
    buffer.unmap();
    return rgbFromRgba(width, height, rgba);
  } finally {
    texture.destroy();
    buffer.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Preprocessing: the official one (Resize shortest edge, Pillow bicubic -> CenterCrop -> ToTensor ->
// Normalize(0.5, 0.5)), on the GPU with the core's kernels (src/core/preprocess.ts).

export interface Preprocessed {
  batch: number;
  /** f32 [B, 3, S, S] in [-1, 1]: the model's pixel_values. */
  pixelValues: Float32Array;
  /** The B cropped S x S 8-bit images that pixelValues encodes. */
  images: RgbImage[];
}

const libraries = new WeakMap<Gpu, KernelLibrary>();

/** Images of any sizes -> pixel_values [B, 3, S, S] (S = the model's image size, DualToken.imageSize). */
export async function preprocessImages(gpu: Gpu, images: RgbImage[], size: number, shaders: ShaderSources = SHADERS): Promise<Preprocessed> {
  let kernels = shaders === SHADERS ? libraries.get(gpu) : undefined;
  if (!kernels) {
    kernels = new KernelLibrary(gpu, shaders);
    if (shaders === SHADERS) libraries.set(gpu, kernels);
  }
  const batch = await ImageBatch.upload(kernels, images, size);
  const prog = new Program(kernels, 'preprocess', true);
  try {
    const pv = preprocess(prog, batch);
    pv.pinned = true;
    const rgb8 = prog.tapped('preprocess.rgb8');
    const [pvBytes, rgbBytes] = await prog.run([pv, rgb8]);
    return { batch: images.length, pixelValues: new Float32Array(pvBytes, 0, pv.numel), images: unpackRgb8(rgbBytes, rgb8.shape) };
  } finally {
    prog.destroy();
    batch.destroy();
  }
}

/** 8-bit RGB (HWC, already S x S) -> f32 [1, 3, H, W]: ToTensor (/255) then Normalize(0.5, 0.5) in float32, as torch does. */
export function rgbToPixelValues(img: RgbImage): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[c * n + i] = Math.fround(Math.fround(Math.fround(img.data[3 * i + c] / 255) - 0.5) / 0.5);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Output

/**
 * Image `index` of a reconstruction f32 [B, 3, R, R] -> 8-bit RGB the way the official script
 * saves it: (x + 1) * 127.5 in float32, clamped to [0, 255], truncated (astype(uint8)).
 */
export function reconToRgb(recon: Float32Array, shape: readonly [number, number, number, number], index = 0): RgbImage {
  const [B, C, H, W] = shape;
  if (C !== 3 || index < 0 || index >= B) throw new Error(`reconToRgb: image ${index} of a [${shape}] reconstruction`);
  if (recon.length < B * 3 * H * W) throw new Error(`reconToRgb: ${recon.length} values for [${shape}]`);
  const n = H * W;
  const base = index * 3 * n;
  const data = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.fround(Math.fround(recon[base + c * n + i] + 1) * 127.5);
      data[3 * i + c] = v >= 255 ? 255 : v > 0 ? Math.trunc(v) : 0; // NaN -> 0
    }
  }
  return { width: W, height: H, data };
}

/** RGB -> opaque RGBA ImageData. */
export function rgbToImageData(img: RgbImage): ImageData {
  const n = img.width * img.height;
  const rgba = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) {
    rgba[4 * i] = img.data[3 * i];
    rgba[4 * i + 1] = img.data[3 * i + 1];
    rgba[4 * i + 2] = img.data[3 * i + 2];
    rgba[4 * i + 3] = 255;
  }
  return new ImageData(rgba, img.width, img.height);
}

/** Draws RGB pixels 1:1 into a canvas (resized to the image). Scale for display with CSS (image-rendering: pixelated). */
export function drawRgb(canvas: HTMLCanvasElement | OffscreenCanvas, img: RgbImage): void {
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null;
  if (!ctx) throw new Error('no 2D canvas context');
  ctx.putImageData(rgbToImageData(img), 0, 0);
}

/** drawRgb(canvas, reconToRgb(recon, shape, index)). */
export function drawRecon(canvas: HTMLCanvasElement | OffscreenCanvas, recon: Float32Array, shape: readonly [number, number, number, number], index = 0): RgbImage {
  const img = reconToRgb(recon, shape, index);
  drawRgb(canvas, img);
  return img;
}
