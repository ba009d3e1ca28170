// Images in and out of the model on the GPU.
//
// In: the official preprocessing (open_clip image_transform_v2, eval): torchvision 0.14
// Resize(S, BICUBIC) -- the shorter side becomes S, the longer floor(S * long / short) -- done by
// Pillow 9.4's antialiased bicubic in 8-bit fixed point (horizontal pass, 8-bit intermediate,
// vertical pass; a pass whose size is unchanged is skipped), CenterCrop(S) with Python's
// round-half-to-even offsets, then ToTensor (/255) and Normalize(0.5, 0.5) into NCHW f32.
// Every output pixel depends only on its own taps, so the passes compute only the cropped
// window (and the horizontal pass only the input rows the vertical pass reads): the values are
// those of the full resize followed by the crop. The tap tables are built here on the host, in
// double precision exactly as Pillow's precompute_coeffs / normalize_coeffs_8bpc do.
//
// Out: recon [B, 3, H, W] -> 8-bit RGB, truncating like the official saver.
import type { Gpu } from './gpu.js';
import { checkRgbImage, type RgbImage } from './image.js';
import type { Program } from './program.js';
import { Tensor, shapeStr, type GpuDType } from './tensor.js';

const cdiv = (a: number, b: number) => Math.ceil(a / b);

/** Pillow's PRECISION_BITS for 8-bit images. */
const PRECISION_BITS = 22;

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

/** How one image becomes its S x S slot: sizes, crop, and where its tap tables sit. */
export interface PreprocessPlan {
  width: number;
  height: number;
  /** Size after Resize (before the crop). */
  resized: [number, number];
  /** Crop offsets in the resized image. */
  left: number;
  top: number;
  /** Input rows [rowFirst, rowFirst + rows) feed the vertical pass. */
  rowFirst: number;
  rows: number;
  hTaps: number;
  vTaps: number;
  /** Element offsets of the horizontal / vertical tables in the batch's table buffer. */
  hTable: number;
  vTable: number;
}

/** Sizes, crop and tap tables of one image (the tables are appended to `tables`). */
export function planPreprocess(width: number, height: number, S: number, tables: number[]): PreprocessPlan {
  const [newW, newH] = resizedSize(width, height, S);
  const left = centerCropOffset(newW, S);
  const top = centerCropOffset(newH, S);
  const h = tapTable(width, newW, left, S);
  const v = tapTable(height, newH, top, S);
  // Input rows read by the vertical pass; its first indices become rows of the horizontal output.
  let rowFirst = Infinity;
  let rowEnd = 0;
  for (let i = 0; i < v.entries.length; i += v.taps + 2) {
    rowFirst = Math.min(rowFirst, v.entries[i]);
    rowEnd = Math.max(rowEnd, v.entries[i] + v.entries[i + 1]);
  }
  for (let i = 0; i < v.entries.length; i += v.taps + 2) v.entries[i] -= rowFirst;
  const hTable = tables.length;
  for (const e of h.entries) tables.push(e);
  const vTable = tables.length;
  for (const e of v.entries) tables.push(e);
  return { width, height, resized: [newW, newH], left, top, rowFirst, rows: rowEnd - rowFirst, hTaps: h.taps, vTaps: v.taps, hTable, vTable };
}

/** torch float32: (v / 255 - 0.5) / 0.5 for every 8-bit value (ToTensor then Normalize). */
function normalizeTable(): Float32Array {
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(Math.fround(v / 255) - 0.5) / 0.5);
  return lut;
}

function uploadOwned(gpu: Gpu, shape: number[], data: Uint32Array | Int32Array | Float32Array, dtype: GpuDType, label: string): Tensor {
  const limit = gpu.limits.maxStorageBufferBindingSize;
  if (data.byteLength > limit) throw new Error(`${label} ${shapeStr(shape)} is ${data.byteLength} bytes, over the adapter's maxStorageBufferBindingSize ${limit}`);
  const buffer = gpu.device.createBuffer({ label, size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  gpu.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  const t = new Tensor(buffer, shape, dtype, 0, label);
  t.pinned = true;
  return t;
}

/** One pixel per u32, R | G << 8 | B << 16 (the layout of every image kernel). */
export function packRgb8(img: RgbImage): Uint32Array {
  const n = img.width * img.height;
  const out = new Uint32Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) out[i] = d[3 * i] | (d[3 * i + 1] << 8) | (d[3 * i + 2] << 16);
  return out;
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

/**
 * Images of any sizes on the GPU with everything preprocess() needs for crop size S: one packed
 * pixel tensor [H, W] per image, the tap tables of all images, the normalisation table.
 * The batch owns these buffers: destroy() it once the programs that read it are done.
 */
export class ImageBatch {
  private constructor(
    readonly size: number,
    readonly images: Tensor[],
    readonly plans: PreprocessPlan[],
    readonly tables: Tensor,
    readonly lut: Tensor,
  ) {}

  static upload(gpu: Gpu, images: RgbImage[], S: number, label = 'image'): ImageBatch {
    if (!images.length) throw new Error('preprocess: no images');
    if (!Number.isInteger(S) || S < 1) throw new Error(`preprocess: crop size ${S} is not a positive integer`);
    const tableData: number[] = [];
    const plans = images.map((img, b) => {
      checkRgbImage(img, `${label} ${b}`);
      return planPreprocess(img.width, img.height, S, tableData);
    });
    const pixels = images.map((img, b) => uploadOwned(gpu, [img.height, img.width], packRgb8(img), 'u32', `${label} ${b}`));
    const tables = uploadOwned(gpu, [tableData.length], Int32Array.from(tableData), 'i32', `${label} resize taps`);
    const lut = uploadOwned(gpu, [256], normalizeTable(), 'f32', 'normalize table');
    return new ImageBatch(S, pixels, plans, tables, lut);
  }

  get count(): number {
    return this.images.length;
  }

  destroy(): void {
    for (const t of [...this.images, this.tables, this.lut]) t.buffer.destroy();
  }
}

/**
 * The official preprocessing of every image of the batch into one tensor: pixel_values
 * [B, 3, S, S] f32 (NCHW, values in [-1, 1]). The 8-bit images after resize + crop ([B, S, S]
 * packed u32, what torchvision hands to ToTensor) are tapped as 'preprocess.rgb8'.
 */
export function preprocess(prog: Program, batch: ImageBatch, label = 'pixel_values'): Tensor {
  const S = batch.size;
  const B = batch.count;
  const rgb8 = prog.alloc([B, S, S], 'preprocess.rgb8', 'u32');
  batch.plans.forEach((plan, b) => {
    // Horizontal pass: the S cropped columns of input rows [rowFirst, rowFirst + rows).
    const rows = prog.alloc([plan.rows, S], `preprocess.h ${b}`, 'u32');
    prog.dispatch({
      kernel: 'resize_bicubic',
      constants: { VERTICAL: 0 },
      uniforms: { outW: S, outH: plan.rows, srcW: plan.width, srcOffset: plan.rowFirst * plan.width, dstOffset: 0, tableOffset: plan.hTable, taps: plan.hTaps },
      bind: { src: batch.images[b], table: batch.tables, dst: rows },
      groups: cdiv(S * plan.rows, 64),
    });
    // Vertical pass: the S cropped rows, into the image's slot of the batch.
    prog.dispatch({
      kernel: 'resize_bicubic',
      constants: { VERTICAL: 1 },
      uniforms: { outW: S, outH: S, srcW: S, srcOffset: 0, dstOffset: b * S * S, tableOffset: plan.vTable, taps: plan.vTaps },
      bind: { src: rows, table: batch.tables, dst: rgb8 },
      groups: cdiv(S * S, 64),
    });
    prog.release(rows);
  });
  prog.tap('preprocess.rgb8', rgb8);
  const out = prog.alloc([B, 3, S, S], label);
  prog.dispatch({ kernel: 'normalize_rgb8', uniforms: { B, HW: S * S }, bind: { pixels: rgb8, lut: batch.lut, out }, groups: cdiv(out.numel, 256) });
  prog.release(rgb8);
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
