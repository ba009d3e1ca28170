// Images in and out of the model on the GPU.
//
// In: the official preprocessing (open_clip image_transform_v2, eval): torchvision 0.14
// Resize(S, BICUBIC) -- the shorter side becomes S, the longer floor(S * long / short) -- done by
// Pillow 9.4's antialiased bicubic in 8-bit fixed point (horizontal pass, 8-bit intermediate,
// vertical pass; a pass whose size is unchanged is skipped), CenterCrop(S) with Python's
// round-half-to-even offsets, then ToTensor (/255) and Normalize(0.5, 0.5) into NCHW f32.
// Every output pixel depends only on its own taps, so the passes compute only the cropped
// window (and the horizontal pass only the input rows the vertical pass reads, from the input
// columns its own taps read): the values are those of the full resize followed by the crop. The
// tap tables are built here on the host, in double precision exactly as Pillow's
// precompute_coeffs / normalize_coeffs_8bpc do.
//
// Images of any size (up to MAX_IMAGE_PIXELS) in bounded memory: the horizontal pass, whose
// every output row depends on one input row only, runs at upload time on bands of source rows,
// each packed straight from the RGB8 image into one reused staging buffer of at most
// STAGING_BYTES (and never more than the adapter's storage-binding and buffer limits). Only its
// small output [rows, S] per image stays on the GPU for preprocess(), so banding changes no value.
//
// Out: recon [B, 3, H, W] -> 8-bit RGB, truncating like the official saver.
import type { Gpu } from './gpu.js';
import { checkImageSize, checkRgbImage, type RgbImage } from './image.js';
import type { KernelLibrary } from './kernels.js';
import { Program } from './program.js';
import { Tensor, shapeStr, type GpuDType } from './tensor.js';
import { cdiv } from './arith.js';

/** Pillow's PRECISION_BITS for 8-bit images. */
const PRECISION_BITS = 22;

/** Bytes of one source band at most, in its staging buffer and again in its storage buffer (lowered to the adapter's limits). */
const STAGING_BYTES = 32 * 2 ** 20;

/** torchvision Resize(S) with an int size: [newW, newH], shorter side S, longer floor(S * long / short). */
export function resizedSize(width: number, height: number, S: number): [number, number] {
  if (width <= height) return [S, Math.floor((S * height) / width)];
  return [Math.floor((S * width) / height), S];
}

/** torchvision CenterCrop offset int(round((size - S) / 2)), Python's round half to even. */
export function centerCropOffset(size: number, S: number): number {
  const d = size - S;
  if (d < 0) throw new Error(`center crop of ${S} from ${size} pixels`);
  const half = Math.floor(d / 2);
  return d % 2 === 0 || half % 2 === 0 ? half : half + 1;
}

/** Pillow's bicubic filter, a = -0.5 (Resample.c bicubic_filter). */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/**
 * The tap table of outputs [from, from + count) of a resize inSize -> outSize: per output
 * `taps + 2` values [first input index, n, n fixed-point coefficients, zeros], taps being Pillow's
 * ksize = ceil(support) * 2 + 1. A skipped pass (inSize = outSize) is one tap of 2^22 (a copy).
 */
function tapTable(inSize: number, outSize: number, from: number, count: number): { taps: number; entries: number[] } {
  if (inSize === outSize) {
    const entries: number[] = [];
    for (let o = from; o < from + count; o++) entries.push(o, 1, 1 << PRECISION_BITS);
    return { taps: 1, entries };
  }
  // precompute_coeffs with the whole input as the box.
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 2 * filterscale;
  const ss = 1 / filterscale;
  const taps = Math.ceil(support) * 2 + 1;
  const entries: number[] = [];
  for (let o = from; o < from + count; o++) {
    const center = (o + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const w: number[] = [];
    let ww = 0;
    for (let x = 0; x < n; x++) {
      w.push(bicubic((x + xmin - center + 0.5) * ss));
      ww += w[x];
    }
    entries.push(xmin, n);
    for (let x = 0; x < taps; x++) {
      const k = x >= n ? 0 : ww !== 0 ? w[x] / ww : w[x];
      // normalize_coeffs_8bpc: (int)(k * 2^22 +- 0.5), i.e. round half away from zero.
      entries.push(k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS)) : Math.trunc(0.5 + k * (1 << PRECISION_BITS)));
    }
  }
  return { taps, entries };
}

/** How one image becomes its S x S slot: sizes, crop, the source window, where its tap tables sit. */
export interface PreprocessPlan {
  width: number;
  height: number;
  /** Size after Resize (before the crop). */
  resized: [number, number];
  /** Crop offsets in the resized image. */
  left: number;
  top: number;
  /** The source window the horizontal pass reads: input columns [colFirst, colFirst + cols) ... */
  colFirst: number;
  cols: number;
  /** ... of input rows [rowFirst, rowFirst + rows), the rows the vertical pass reads. */
  rowFirst: number;
  rows: number;
  hTaps: number;
  vTaps: number;
  /** Element offsets of the horizontal / vertical tables in the batch's table buffer. */
  hTable: number;
  vTable: number;
}

/** The input span [first, first + count) a tap table reads; its first indices are made relative to it. */
function rebase(table: { taps: number; entries: number[] }): [first: number, count: number] {
  const { taps, entries } = table;
  let first = Infinity;
  let end = 0;
  for (let i = 0; i < entries.length; i += taps + 2) {
    first = Math.min(first, entries[i]);
    end = Math.max(end, entries[i] + entries[i + 1]);
  }
  for (let i = 0; i < entries.length; i += taps + 2) entries[i] -= first;
  return [first, end - first];
}

/** Sizes, crop, source window and tap tables of one image (the tables are appended to `tables`). */
export function planPreprocess(width: number, height: number, S: number, tables: number[]): PreprocessPlan {
  const [newW, newH] = resizedSize(width, height, S);
  const left = centerCropOffset(newW, S);
  const top = centerCropOffset(newH, S);
  const h = tapTable(width, newW, left, S);
  const v = tapTable(height, newH, top, S);
  // The horizontal pass reads window columns; the vertical pass reads rows of the horizontal output.
  const [colFirst, cols] = rebase(h);
  const [rowFirst, rows] = rebase(v);
  const hTable = tables.length;
  for (const e of h.entries) tables.push(e);
  const vTable = tables.length;
  for (const e of v.entries) tables.push(e);
  return { width, height, resized: [newW, newH], left, top, colFirst, cols, rowFirst, rows, hTaps: h.taps, vTaps: v.taps, hTable, vTable };
}

/** torch float32: (v / 255 - 0.5) / 0.5 for every 8-bit value (ToTensor then Normalize). */
function normalizeTable(): Float32Array {
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(Math.fround(v / 255) - 0.5) / 0.5);
  return lut;
}

/** A GPU buffer of `shape` that the caller owns (pinned: no program recycles it). */
function ownedTensor(gpu: Gpu, shape: number[], dtype: GpuDType, label: string): Tensor {
  const bytes = shape.reduce((a, b) => a * b, 1) * 4;
  const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  if (bytes > limit) throw new Error(`${label} ${shapeStr(shape)} is ${bytes} bytes, over the adapter's storage-binding / buffer limit of ${limit} bytes`);
  const buffer = gpu.device.createBuffer({ label, size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const t = new Tensor(buffer, shape, dtype, 0, label);
  t.pinned = true;
  return t;
}

function uploadOwned(gpu: Gpu, shape: number[], data: Int32Array | Float32Array, dtype: GpuDType, label: string): Tensor {
  const t = ownedTensor(gpu, shape, dtype, label);
  gpu.device.queue.writeBuffer(t.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  return t;
}

/**
 * Columns [x0, x0 + w) of rows [y0, y0 + h) of an 8-bit RGB image into `out` [h, w], one pixel
 * per u32, R | G << 8 | B << 16 (the layout of every image kernel).
 */
function packRgb8(img: RgbImage, x0: number, w: number, y0: number, h: number, out: Uint32Array): void {
  const d = img.data;
  for (let y = 0; y < h; y++) {
    let s = ((y0 + y) * img.width + x0) * 3;
    const row = y * w;
    for (let x = 0; x < w; x++, s += 3) out[row + x] = d[s] | (d[s + 1] << 8) | (d[s + 2] << 16);
  }
}

/** Images read back from a packed u32 tensor [B, H, W]. */
export function unpackRgb8(packed: ArrayBuffer | Uint32Array, shape: number[]): RgbImage[] {
  const [B, H, W] = shape;
  if (shape.length !== 3) throw new Error(`unpackRgb8: shape ${shapeStr(shape)} is not [B, H, W]`);
  const words = packed instanceof Uint32Array ? packed : new Uint32Array(packed, 0, B * H * W);
  const images: RgbImage[] = [];
  for (let b = 0; b < B; b++) {
    const data = new Uint8Array(H * W * 3);
    for (let i = 0; i < H * W; i++) {
      const px = words[b * H * W + i];
      data[3 * i] = px & 255;
      data[3 * i + 1] = (px >>> 8) & 255;
      data[3 * i + 2] = (px >>> 16) & 255;
    }
    images.push({ width: W, height: H, data });
  }
  return images;
}

export interface UploadOptions {
  /** Names the images in errors: `${label} ${index}` ('image'). */
  label?: string;
  /** Bytes of one source band, at most (STAGING_BYTES; always lowered to the adapter's limits). */
  bandBytes?: number;
}

/** Source rows of `cols` packed pixels that one band holds: the budget within the adapter's limits. */
function rowsPerBand(gpu: Gpu, cols: number, budget: number, label: string): number {
  const bytes = Math.min(budget, gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  const rows = Math.floor(bytes / (4 * cols));
  if (rows < 1) throw new Error(`${label}: a source row of ${cols} pixels needs ${4 * cols} bytes, over the band limit of ${bytes} bytes`);
  return rows;
}

/**
 * The horizontal pass of one image, band by band: source rows [rowFirst, rowFirst + rows) x
 * columns [colFirst, colFirst + cols) -> `out` u32 [rows, S] (the S cropped columns). Each band is
 * packed into one mapped staging buffer, copied to one storage buffer and resized before the
 * next is packed, so the GPU holds one band of the source at a time.
 */
async function resizeRowsInBands(kernels: KernelLibrary, img: RgbImage, plan: PreprocessPlan, S: number, tables: Tensor, out: Tensor, budget: number, label: string): Promise<void> {
  const { device } = kernels.gpu;
  const n = Math.min(plan.rows, rowsPerBand(kernels.gpu, plan.cols, budget, label));
  const bytes = n * plan.cols * 4;
  const staging = device.createBuffer({ label: `${label} staging`, size: bytes, usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
  const band = new Tensor(device.createBuffer({ label: `${label} band`, size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST }), [n, plan.cols], 'u32', 0, `${label} band`);
  try {
    for (let r = 0; r < plan.rows; r += n) {
      const count = Math.min(n, plan.rows - r);
      if (r > 0) await staging.mapAsync(GPUMapMode.WRITE); // the previous band's run is done
      packRgb8(img, plan.colFirst, plan.cols, plan.rowFirst + r, count, new Uint32Array(staging.getMappedRange()));
      staging.unmap();
      const prog = new Program(kernels, `${label} resize rows ${r}..${r + count}`);
      try {
        // Output rows [r, r + count) of `out` from band rows [0, count).
        prog.dispatch({
          kernel: 'resize_bicubic',
          constants: { VERTICAL: 0 },
          uniforms: { outW: S, outH: count, srcW: plan.cols, srcOffset: 0, dstOffset: r * S, tableOffset: plan.hTable, taps: plan.hTaps },
          bind: { src: band, table: tables, dst: out },
          groups: cdiv(S * count, 64),
        });
        await prog.run([], (encoder) => encoder.copyBufferToBuffer(staging, 0, band.buffer, 0, count * plan.cols * 4));
      } finally {
        prog.destroy();
      }
    }
  } finally {
    staging.destroy();
    band.buffer.destroy();
  }
}

/**
 * Images of any sizes on the GPU with everything preprocess() needs for crop size S: per image
 * the horizontal pass's output u32 [rows, S] (computed at upload, band by band), the tap tables
 * of all images, the normalisation table. The batch owns these buffers: destroy() it once the
 * programs that read it are done.
 */
export class ImageBatch {
  private constructor(
    readonly size: number,
    /** Per image: the S cropped columns of its source rows [rowFirst, rowFirst + rows), u32 [rows, S]. */
    readonly rows: Tensor[],
    readonly plans: PreprocessPlan[],
    readonly tables: Tensor,
    readonly lut: Tensor,
  ) {}

  static async upload(kernels: KernelLibrary, images: RgbImage[], S: number, opts: UploadOptions = {}): Promise<ImageBatch> {
    const { label = 'image', bandBytes = STAGING_BYTES } = opts;
    if (!images.length) throw new Error('preprocess: no images');
    if (!Number.isInteger(S) || S < 1) throw new Error(`preprocess: crop size ${S} is not a positive integer`);
    const tableData: number[] = [];
    const plans = images.map((img, b) => {
      checkRgbImage(img, `${label} ${b}`);
      checkImageSize(img.width, img.height, `${label} ${b}`);
      return planPreprocess(img.width, img.height, S, tableData);
    });
    const gpu = kernels.gpu;
    const tables = uploadOwned(gpu, [tableData.length], Int32Array.from(tableData), 'i32', `${label} resize taps`);
    const lut = uploadOwned(gpu, [256], normalizeTable(), 'f32', 'normalize table');
    const rows: Tensor[] = [];
    const batch = new ImageBatch(S, rows, plans, tables, lut);
    try {
      for (const [b, img] of images.entries()) {
        rows.push(ownedTensor(gpu, [plans[b].rows, S], 'u32', `${label} ${b} rows`));
        await resizeRowsInBands(kernels, img, plans[b], S, tables, rows[b], bandBytes, `${label} ${b}`);
      }
    } catch (e) {
      batch.destroy();
      throw e;
    }
    return batch;
  }

  get count(): number {
    return this.rows.length;
  }

  destroy(): void {
    for (const t of [...this.rows, this.tables, this.lut]) t.buffer.destroy();
  }
}

/**
 * The official preprocessing of every image of the batch into one tensor: pixel_values
 * [B, 3, S, S] f32 (NCHW, values in [-1, 1]). The 8-bit images after resize + crop ([B, S, S]
 * packed u32, what torchvision hands to ToTensor) are tapped as 'preprocess.rgb8'. The
 * horizontal pass ran at upload (ImageBatch.upload): this records the vertical one and the rest.
 */
export function preprocess(prog: Program, batch: ImageBatch, label = 'pixel_values'): Tensor {
  const S = batch.size;
  const B = batch.count;
  const rgb8 = prog.alloc([B, S, S], 'preprocess.rgb8', 'u32');
  batch.plans.forEach((plan, b) => {
    // Vertical pass: the S cropped rows, into the image's slot of the batch.
    prog.dispatch({
      kernel: 'resize_bicubic',
      constants: { VERTICAL: 1 },
      uniforms: { outW: S, outH: S, srcW: S, srcOffset: 0, dstOffset: b * S * S, tableOffset: plan.vTable, taps: plan.vTaps },
      bind: { src: batch.rows[b], table: batch.tables, dst: rgb8 },
      groups: cdiv(S * S, 64),
    });
  });
  prog.tap('preprocess.rgb8', rgb8);
  const out = prog.alloc([B, 3, S, S], label);
  prog.dispatch({ kernel: 'normalize_rgb8', uniforms: { B, HW: S * S }, bind: { pixels: rgb8, lut: batch.lut, out }, groups: cdiv(out.numel, 256) });
  return out;
}

/**
 * recon [B, 3, H, W] f32 -> [B, H, W] u32 packed 8-bit RGB: clamp((x + 1) * 127.5, 0, 255)
 * TRUNCATED, as the official saver does (astype(uint8)). Read it back with unpackRgb8().
 */
export function toRgb8(prog: Program, recon: Tensor, label = 'recon.rgb8'): Tensor {
  const [B, C, H, W] = recon.shape;
  if (recon.shape.length !== 4 || C !== 3) throw new Error(`toRgb8: ${recon.label} ${shapeStr(recon.shape)} is not [B, 3, H, W]`);
  const out = prog.alloc([B, H, W], label, 'u32');
  prog.dispatch({ kernel: 'to_rgb8', uniforms: { B, HW: H * W }, bind: { x: recon, out }, groups: cdiv(out.numel, 256) });
  return out;
}
