// CPU reference of the official preprocessing and of the 8-bit output, written independently of
// src/core/preprocess.ts and as literally as possible after the originals:
// torchvision 0.14 F_pil.resize (size of the shorter side) -> Pillow 9.4 Image.resize(BICUBIC)
// (Resample.c: precompute_coeffs, normalize_coeffs_8bpc, ImagingResampleHorizontal_8bpc /
// Vertical_8bpc, ImagingResampleInner, which resizes the WHOLE image) -> F.center_crop ->
// ToTensor -> Normalize(0.5, 0.5) in float32; and inference.py save_images.
import type { RgbImage } from '../../src/core/image.js';

const PRECISION_BITS = 32 - 8 - 2;

function bicubicFilter(x: number): number {
  const a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

/** Pillow's precompute_coeffs for box [0, inSize] followed by normalize_coeffs_8bpc. */
export function precomputeCoeffs(inSize: number, outSize: number): { ksize: number; bounds: Int32Array; kk: Int32Array } {
  const support0 = 2.0; // BICUBIC support
  let filterscale = inSize / outSize;
  const scale = filterscale;
  if (filterscale < 1.0) filterscale = 1.0;
  const support = support0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const prekk = new Float64Array(outSize * ksize);
  const bounds = new Int32Array(outSize * 2);
  for (let xx = 0; xx < outSize; xx++) {
    const center = 0 + (xx + 0.5) * scale;
    let ww = 0.0;
    const ss = 1.0 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const k = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const w = bicubicFilter((x + xmin - center + 0.5) * ss);
      prekk[k + x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) if (ww !== 0.0) prekk[k + x] /= ww;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  const kk = new Int32Array(outSize * ksize);
  for (let x = 0; x < outSize * ksize; x++) {
    kk[x] = prekk[x] < 0 ? Math.trunc(-0.5 + prekk[x] * (1 << PRECISION_BITS)) : Math.trunc(0.5 + prekk[x] * (1 << PRECISION_BITS));
  }
  return { ksize, bounds, kk };
}

function clip8(v: number): number {
  if (v >= 1 << PRECISION_BITS << 8) return 255;
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

/** One pass along x (horizontal) or y; `offset` = first input row (horizontal) as in Pillow. */
function resamplePass(img: RgbImage, out: RgbImage, horizontal: boolean, offset: number, c: ReturnType<typeof precomputeCoeffs>): void {
  for (let yy = 0; yy < out.height; yy++) {
    for (let xx = 0; xx < out.width; xx++) {
      const o = horizontal ? xx : yy;
      const min = c.bounds[o * 2];
      const n = c.bounds[o * 2 + 1];
      const ss = [1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1)];
      for (let t = 0; t < n; t++) {
        const px = horizontal ? ((yy + offset) * img.width + min + t) * 3 : ((min + t) * img.width + xx) * 3;
        const w = c.kk[o * c.ksize + t];
        for (let ch = 0; ch < 3; ch++) ss[ch] = (ss[ch] + img.data[px + ch] * w) | 0;
      }
      for (let ch = 0; ch < 3; ch++) out.data[(yy * out.width + xx) * 3 + ch] = clip8(ss[ch]);
    }
  }
}

/** Pillow 9.4 Image.resize((xsize, ysize), BICUBIC) of an RGB image (ImagingResampleInner). */
export function pillowResizeBicubic(img: RgbImage, xsize: number, ysize: number): RgbImage {
  if (img.width === xsize && img.height === ysize) return { ...img, data: img.data.slice() };
  const needHorizontal = xsize !== img.width;
  const needVertical = ysize !== img.height;
  const horiz = precomputeCoeffs(img.width, xsize);
  const vert = precomputeCoeffs(img.height, ysize);
  const yboxFirst = vert.bounds[0];
  const yboxLast = vert.bounds[ysize * 2 - 2] + vert.bounds[ysize * 2 - 1];
  let cur = img;
  if (needHorizontal) {
    for (let i = 0; i < ysize; i++) vert.bounds[i * 2] -= yboxFirst;
    const tmp: RgbImage = { width: xsize, height: yboxLast - yboxFirst, data: new Uint8Array(xsize * (yboxLast - yboxFirst) * 3) };
    resamplePass(cur, tmp, true, yboxFirst, horiz);
    cur = tmp;
  }
  if (needVertical) {
    const out: RgbImage = { width: cur.width, height: ysize, data: new Uint8Array(cur.width * ysize * 3) };
    resamplePass(cur, out, false, 0, vert);
    cur = out;
  }
  return cur;
}

/** torchvision F_pil.resize with an int size (shorter side -> size, longer int(size * long / short)). */
export function torchvisionResize(img: RgbImage, size: number): RgbImage {
  const { width: w, height: h } = img;
  const [short, long] = w <= h ? [w, h] : [h, w];
  const [newShort, newLong] = [size, Math.trunc((size * long) / short)];
  const [newW, newH] = w <= h ? [newShort, newLong] : [newLong, newShort];
  if (w === newW && h === newH) return img;
  return pillowResizeBicubic(img, newW, newH);
}

/** Python 3 round() of x.5 values: half to even. */
function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return Math.round(x);
  return f % 2 === 0 ? f : f + 1;
}

/** torchvision F.center_crop(img, size) for an image at least size x size. */
export function centerCrop(img: RgbImage, size: number): RgbImage {
  const top = Math.trunc(pyRound((img.height - size) / 2.0));
  const left = Math.trunc(pyRound((img.width - size) / 2.0));
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) data.set(img.data.subarray(((top + y) * img.width + left) * 3, ((top + y) * img.width + left + size) * 3), y * size * 3);
  return { width: size, height: size, data };
}

/** ToTensor + Normalize(0.5, 0.5) in float32 of a batch of S x S images -> [B, 3, S, S]. */
export function toPixelValues(images: RgbImage[]): Float32Array {
  const S = images[0].width;
  const out = new Float32Array(images.length * 3 * S * S);
  images.forEach((img, b) => {
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < S * S; i++) {
        const x = Math.fround(img.data[i * 3 + c] / 255);
        out[(b * 3 + c) * S * S + i] = Math.fround(Math.fround(x - 0.5) / 0.5);
      }
    }
  });
  return out;
}

/** The whole official preprocessing of one image: the 8-bit crop and nothing else. */
export function preprocessRef(img: RgbImage, size: number): RgbImage {
  return centerCrop(torchvisionResize(img, size), size);
}

/** inference.py save_images: ((x + 1) * 127.5).clamp(0, 255) in float32, astype(uint8) truncates. */
export function toRgb8Ref(recon: Float32Array, shape: number[]): RgbImage[] {
  const [B, C, H, W] = shape;
  if (C !== 3) throw new Error(`toRgb8Ref: [${shape}] is not [B, 3, H, W]`);
  const images: RgbImage[] = [];
  for (let b = 0; b < B; b++) {
    const data = new Uint8Array(H * W * 3);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < H * W; i++) {
        const v = Math.fround(Math.fround(recon[(b * 3 + c) * H * W + i] + 1) * 127.5);
        data[i * 3 + c] = Math.trunc(Math.min(Math.max(v, 0), 255));
      }
    }
    images.push({ width: W, height: H, data });
  }
  return images;
}
