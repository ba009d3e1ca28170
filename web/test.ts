// The browser test page (web/test.html), driven by test/browser.test.ts through
// window.dualtokenTest. It uses only the published bundle (./dualtoken.js): a model by URL,
// the golden pixel_values read in the page, encode + decode on the page's WebGPU device.
import {
  KernelLibrary,
  MemoryReader,
  imageToRgb,
  loadDualTokenFromUrl,
  openSafetensors,
  preprocessImages,
  reconToRgb,
  requestBrowserGpu,
  toFloat32,
  type Gpu,
  type HttpReaderStats,
  type RgbImage,
  type TensorSource,
} from '../src/browser/index.js';
import { loadDualTokenInWorker } from '../src/browser/worker-client.js';

export interface EnvReport {
  webgpu: boolean;
  secureContext: boolean;
  cacheApi: boolean;
  adapter?: string;
  features?: string[];
  error?: string;
}

export interface GoldenRun {
  adapter: string;
  download: HttpReaderStats;
  /** Milliseconds per stage; *_first include pipeline compilation. */
  ms: Record<string, number>;
  pixelCodes: number[];
  semanticCodes: number[];
  semanticFeatures: number[];
  embedding: number[];
  recon: number[];
  reconShape: number[];
  /** pixel_values made in the page from the case's input PNGs (browser decode + GPU preprocessing). */
  pixelValuesFromPng: number[];
  /** encodeImages() of the decoded PNGs (preprocessing + encode in one submission). */
  pixelCodesFromPng: number[];
  semanticCodesFromPng: number[];
  /** 8-bit reconstruction vs the case's recon_*.png: pixels (channels) that differ, and by how much at most. */
  recon8: { differing: number; maxDiff: number; total: number; gpuVsCpu: number };
}

/** First and second encode / decode of a model loaded on a fresh device (timings only). */
export interface FirstRuns {
  asyncPipelines: boolean;
  prepare: number[];
  /** Milliseconds: load (with `prepare`'s compiles), encode_1, encode_2, decode_1, decode_2. */
  ms: Record<string, number>;
  pixelCodes: number[];
}

/** The model in a Web Worker (dualtoken-worker.js): golden pixel_values and the case's PNGs through it. */
export interface WorkerRun {
  adapter: string;
  imageSize: number;
  progressCalls: number;
  ms: Record<string, number>;
  pixelCodes: number[];
  semanticCodes: number[];
  embedding: number[];
  /** encodeImages of the PNGs: as Blobs, as ImageBitmaps (transferred), as ArrayBuffers (transferred). */
  fromBlobs: number[];
  fromBitmaps: number[];
  fromBuffers: number[];
  bitmapDetached: boolean;
  recon: number[];
  reconShape: number[];
  images8: number;
  afterDispose: string;
}

export interface LoadRun {
  ms: number;
  download: HttpReaderStats;
}

let gpuPromise: Promise<Gpu> | undefined;
const gpu = () => (gpuPromise ??= requestBrowserGpu());

async function env(): Promise<EnvReport> {
  const r: EnvReport = { webgpu: 'gpu' in navigator && !!navigator.gpu, secureContext: isSecureContext, cacheApi: typeof caches !== 'undefined' };
  try {
    const g = await gpu();
    r.adapter = g.describe();
    r.features = [...g.device.features].sort();
  } catch (e) {
    r.error = (e as Error).message;
  }
  return r;
}

async function openRemote(url: string): Promise<TensorSource> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return openSafetensors(new MemoryReader(await res.arrayBuffer(), url));
}

async function fetchBlob(url: string): Promise<Blob> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.blob();
}

/** Loads the model at `modelUrl` (a case folder) and runs the case's pixel_values through encode + decode. */
async function golden(modelUrl: string): Promise<GoldenRun> {
  const ms: Record<string, number> = {};
  const t = performance.now.bind(performance);
  let t0 = t();
  let download: HttpReaderStats | undefined;
  const g = await gpu();
  const model = await loadDualTokenFromUrl(modelUrl, { gpu: g, onDownloadStats: (s) => (download = s) });
  ms.load = t() - t0;
  try {
    const expected = await openRemote(new URL('expected.safetensors', new URL(modelUrl, location.href)).href);
    const info = expected.info('pixel_values')!;
    const pv = toFloat32(await expected.read('pixel_values'), info.dtype, 'pixel_values');
    const B = info.shape[0];

    t0 = t();
    const enc = await model.encode(pv, B);
    ms.encode_first = t() - t0;
    t0 = t();
    await model.encode(pv, B);
    ms.encode = t() - t0;
    t0 = t();
    const dec = await model.decode(enc.pixelCodes, B);
    ms.decode_first = t() - t0;
    t0 = t();
    await model.decode(enc.pixelCodes, B);
    ms.decode = t() - t0;

    // The image path: the case's PNGs decoded by the browser, preprocessed on the GPU.
    const S = model.imageSize;
    t0 = t();
    const rgbs = [];
    for (let b = 0; b < B; b++) rgbs.push(await imageToRgb(await fetchBlob(new URL(`input_${b}.png`, new URL(modelUrl, location.href)).href), { gpu: g }));
    ms.image_to_rgb = t() - t0;
    t0 = t();
    const pre = await preprocessImages(g, rgbs, S);
    ms.preprocess_first = t() - t0;
    t0 = t();
    const fromPng = await model.encodeImages(rgbs);
    ms.encode_images = t() - t0;

    // 8-bit output vs the official recon PNGs.
    let differing = 0;
    let maxDiff = 0;
    let total = 0;
    let gpuVsCpu8 = 0;
    for (let b = 0; b < B; b++) {
      const ref = await imageToRgb(await fetchBlob(new URL(`recon_${b}.png`, new URL(modelUrl, location.href)).href), { gpu: g });
      const got = reconToRgb(dec.recon, dec.shape, b);
      const gpu8 = dec.images[b];
      for (let i = 0; i < got.data.length; i++) if (gpu8.data[i] !== got.data[i]) gpuVsCpu8++;
      if (ref.width !== got.width || ref.height !== got.height) throw new Error(`recon_${b}.png is ${ref.width}x${ref.height}, the reconstruction ${got.width}x${got.height}`);
      for (let i = 0; i < got.data.length; i++) {
        const d = Math.abs(got.data[i] - ref.data[i]);
        if (d) differing++;
        maxDiff = Math.max(maxDiff, d);
      }
      total += got.data.length;
    }

    return {
      adapter: g.describe(),
      download: download!,
      ms,
      pixelCodes: Array.from(enc.pixelCodes),
      semanticCodes: Array.from(enc.semanticCodes),
      semanticFeatures: Array.from(enc.semanticFeatures),
      embedding: Array.from(enc.embedding),
      recon: Array.from(dec.recon),
      reconShape: [...dec.shape],
      pixelValuesFromPng: Array.from(pre.pixelValues),
      pixelCodesFromPng: Array.from(fromPng.pixelCodes),
      semanticCodesFromPng: Array.from(fromPng.semanticCodes),
      recon8: { differing, maxDiff, total, gpuVsCpu: gpuVsCpu8 },
    };
  } finally {
    model.dispose();
  }
}

/** Loads the model once more (to see what comes from the cache). */
async function load(modelUrl: string): Promise<LoadRun> {
  let download: HttpReaderStats | undefined;
  const t0 = performance.now();
  const model = await loadDualTokenFromUrl(modelUrl, { gpu: await gpu(), onDownloadStats: (s) => (download = s) });
  const ms = performance.now() - t0;
  model.dispose();
  return { ms, download: download! };
}

/** Times the first and second encode and decode on a device of its own (pipelines created sync or async). */
async function firstRuns(modelUrl: string, opts: { asyncPipelines: boolean; prepare: number[] }): Promise<FirstRuns> {
  const g = await requestBrowserGpu({ asyncPipelines: opts.asyncPipelines });
  const ms: Record<string, number> = {};
  let t0 = performance.now();
  const model = await loadDualTokenFromUrl(modelUrl, { gpu: g, asyncPipelines: opts.asyncPipelines, prepare: opts.prepare });
  ms.load = performance.now() - t0;
  try {
    const expected = await openRemote(new URL('expected.safetensors', new URL(modelUrl, location.href)).href);
    const info = expected.info('pixel_values')!;
    const pv = toFloat32(await expected.read('pixel_values'), info.dtype, 'pixel_values');
    const B = info.shape[0];
    let enc;
    for (const i of [1, 2]) {
      t0 = performance.now();
      enc = await model.encode(pv, B);
      ms[`encode_${i}`] = performance.now() - t0;
    }
    for (const i of [1, 2]) {
      t0 = performance.now();
      await model.decode(enc!.pixelCodes, B);
      ms[`decode_${i}`] = performance.now() - t0;
    }
    return { ...opts, ms, pixelCodes: Array.from(enc!.pixelCodes) };
  } finally {
    model.dispose();
    g.destroy();
  }
}

async function inWorker(modelUrl: string): Promise<WorkerRun> {
  const ms: Record<string, number> = {};
  let t0 = performance.now();
  let progressCalls = 0;
  const model = await loadDualTokenInWorker(modelUrl, { onProgress: () => progressCalls++ });
  ms.load = performance.now() - t0;
  const expected = await openRemote(new URL('expected.safetensors', new URL(modelUrl, location.href)).href);
  const info = expected.info('pixel_values')!;
  const pv = toFloat32(await expected.read('pixel_values'), info.dtype, 'pixel_values');
  const B = info.shape[0];
  t0 = performance.now();
  const enc = await model.encode(pv.slice(), B);
  ms.encode_first = performance.now() - t0;
  const pngs = (n: number) => Promise.all(Array.from({ length: n }, (_, b) => fetchBlob(new URL(`input_${b}.png`, new URL(modelUrl, location.href)).href)));
  const blobs = await pngs(B);
  t0 = performance.now();
  const fromBlobs = await model.encodeImages(blobs);
  ms.encode_images_blobs = performance.now() - t0;
  const bitmaps = await Promise.all(blobs.map((b) => createImageBitmap(b, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' })));
  const fromBitmaps = await model.encodeImages(bitmaps);
  const fromBuffers = await model.encodeImages(await Promise.all(blobs.map((b) => b.arrayBuffer())));
  t0 = performance.now();
  const dec = await model.decode(enc.pixelCodes.slice(), B);
  ms.decode_first = performance.now() - t0;
  t0 = performance.now();
  await model.decode(enc.pixelCodes.slice(), B);
  ms.decode = performance.now() - t0;
  await model.dispose();
  const afterDispose = await model.encode(pv, B).then(
    () => 'resolved',
    (e: Error) => e.message,
  );
  return {
    adapter: model.adapter,
    imageSize: model.imageSize,
    progressCalls,
    ms,
    pixelCodes: Array.from(enc.pixelCodes),
    semanticCodes: Array.from(enc.semanticCodes),
    embedding: Array.from(enc.embedding),
    fromBlobs: Array.from(fromBlobs.pixelCodes),
    fromBitmaps: Array.from(fromBitmaps.pixelCodes),
    fromBuffers: Array.from(fromBuffers.pixelCodes),
    bitmapDetached: bitmaps[0].width === 0,
    recon: Array.from(dec.recon),
    reconShape: [...dec.shape],
    images8: dec.images.length,
    afterDispose,
  };
}

/** Codes of a JPEG (the file's bytes) in the browser: decoded on the page (libjpeg-turbo wasm) + encodeImages, and in a Web Worker. */
export interface JpegRun {
  width: number;
  height: number;
  page: { pixelCodes: number[]; semanticCodes: number[] };
  worker: { pixelCodes: number[]; semanticCodes: number[] };
}

async function jpeg(modelUrl: string, bytes: number[], name: string): Promise<JpegRun> {
  const file = () => new File([new Uint8Array(bytes)], name, { type: 'image/jpeg' });
  const g = await gpu();
  const rgb = await imageToRgb(file(), { gpu: g });
  const model = await loadDualTokenFromUrl(modelUrl, { gpu: g });
  let page: JpegRun['page'];
  try {
    const enc = await model.encodeImages([rgb]);
    page = { pixelCodes: Array.from(enc.pixelCodes), semanticCodes: Array.from(enc.semanticCodes) };
  } finally {
    model.dispose();
  }
  const w = await loadDualTokenInWorker(modelUrl);
  try {
    const enc = await w.encodeImages([file()]);
    return { width: rgb.width, height: rgb.height, page, worker: { pixelCodes: Array.from(enc.pixelCodes), semanticCodes: Array.from(enc.semanticCodes) } };
  } finally {
    await w.dispose();
  }
}

/** Kernels that fail, created asynchronously: each rejection names its kernel; no error escapes to the device. */
async function asyncPipelineErrors(): Promise<{ pipeline: string; wgsl: string; good: boolean; deviceOk: string }> {
  const g = await requestBrowserGpu({ asyncPipelines: true });
  try {
    const lib = new KernelLibrary(g, {
      // Valid WGSL, but 1024 x 1024 invocations per workgroup: the pipeline's validation fails.
      too_wide: '@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(1024, 1024, 1) fn main(@builtin(global_invocation_id) id: vec3u) { y[id.x] = 1.0; }',
      // Parses (wgsl_reflect), does not type-check: the WGSL compiler's message.
      bad_type: '@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) { let x: u32 = 1.5f; y[id.x] = f32(x); }',
      fine: '@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) { y[id.x] = 2.0; }',
    });
    const message = (p: Promise<unknown>) => p.then(() => 'resolved', (e: Error) => e.message);
    const [pipeline, wgsl, good] = await Promise.all([message(lib.compile(lib.info('too_wide'))), message(lib.compile(lib.info('bad_type'))), lib.compile(lib.info('fine'))]);
    let deviceOk = 'ok';
    try {
      g.check('after the failed pipelines');
    } catch (e) {
      deviceOk = (e as Error).message;
    }
    return { pipeline, wgsl, good: !!good.pipeline, deviceOk };
  } finally {
    g.destroy();
  }
}

/** The same PNG through every image input path: Blob, ImageBitmap, <img>, <canvas>, ImageData; GPU and 2D-canvas reads. */
async function imageInputs(url: string): Promise<Record<string, { width: number; height: number; differing: number }>> {
  const g = await gpu();
  const blob = await fetchBlob(url);
  const ref = await imageToRgb(blob, { gpu: g });
  const bitmap = await createImageBitmap(blob);
  const img = new Image();
  img.src = url;
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = ref.width;
  canvas.height = ref.height;
  canvas.getContext('2d')!.drawImage(bitmap, 0, 0);
  const imageData = canvas.getContext('2d')!.getImageData(0, 0, ref.width, ref.height);
  const inputs: Record<string, Promise<RgbImage>> = {
    'Blob (2D canvas)': imageToRgb(blob),
    'ImageBitmap (GPU)': imageToRgb(bitmap, { gpu: g }),
    'ImageBitmap (2D canvas)': imageToRgb(bitmap),
    'HTMLImageElement (GPU)': imageToRgb(img, { gpu: g }),
    'HTMLCanvasElement (GPU)': imageToRgb(canvas, { gpu: g }),
    'OffscreenCanvas (2D canvas)': imageToRgb(bitmapCanvas(bitmap)),
    ImageData: imageToRgb(imageData),
  };
  if (typeof VideoFrame !== 'undefined') {
    const frame = new VideoFrame(bitmap, { timestamp: 0 });
    inputs['VideoFrame (GPU, else 2D canvas)'] = imageToRgb(frame, { gpu: g }).finally(() => frame.close());
  }
  const out: Record<string, { width: number; height: number; differing: number }> = {};
  for (const [name, p] of Object.entries(inputs)) {
    const got = await p;
    let differing = got.data.length === ref.data.length ? 0 : -1;
    if (differing === 0) for (let i = 0; i < got.data.length; i++) if (got.data[i] !== ref.data[i]) differing++;
    out[name] = { width: got.width, height: got.height, differing };
  }
  return out;
}

function bitmapCanvas(bitmap: ImageBitmap): OffscreenCanvas {
  const c = new OffscreenCanvas(bitmap.width, bitmap.height);
  c.getContext('2d')!.drawImage(bitmap, 0, 0);
  return c;
}

const api = { env, golden, load, imageInputs, firstRuns, inWorker, asyncPipelineErrors, jpeg };
declare global {
  interface Window {
    dualtokenTest: typeof api;
  }
}
window.dualtokenTest = api;
document.getElementById('log')!.textContent = 'ready';
