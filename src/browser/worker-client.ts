// The page's side of the engine in a Web Worker (bundled by scripts/build-web.mjs into
// dist/web/dualtoken-worker.js; package entry `dualtoken-webgpu/worker`). The worker
// (dist/web/dualtoken-worker-thread.js, src/browser/worker.ts) holds the device, the kernels and
// the weights; the page keeps a responsive main thread and the same calls as DualToken:
//
//   import { loadDualTokenInWorker } from 'dualtoken-webgpu/worker';
//   const model = await loadDualTokenInWorker('/models/tiny/', { onProgress: (p) => ... });
//   const codes = await model.encodeImages([file]);            // File/Blob, ArrayBuffer (file bytes), ImageBitmap, ImageData, RGB
//   const { recon, shape, images } = await model.decode(codes.pixelCodes, codes.batch);
//   model.dispose();                                            // frees the GPU memory and ends the worker
//
// ImageBitmaps and ArrayBuffers given to encodeImages are transferred to the worker (they are
// detached in the page afterwards; pass copies to keep them), and so are the typed arrays given
// to encode / decode. Results come back transferred too. This module holds no engine code: only
// types are imported.
import type { DualTokenConfig } from '../core/config.js';
import type { LoadProgress } from '../core/weights.js';
import type { DecodeResult, EncodeResult, GpuMemory } from '../model/dualtoken.js';
import type { HttpReaderStats } from './http-reader.js';
import type { EncodeImagesResult, WorkerClassifyResult, WorkerImage, WorkerLoadSettings, WorkerModelInfo, WorkerRequest, WorkerResponse, WorkerResult } from './worker-protocol.js';
export { DEFAULT_CACHE_NAME } from './http-reader.js';

export type { DecodeResult, EncodeImagesResult, WorkerClassifyResult, EncodeResult, GpuMemory, HttpReaderStats, LoadProgress, WorkerImage, WorkerLoadSettings, WorkerModelInfo, DualTokenConfig };
export type { RgbImage } from '../core/image.js';

export interface WorkerLoadOptions extends WorkerLoadSettings {
  /**
   * The worker to run the engine in: a Worker already running dualtoken-worker-thread.js, or
   * that script's URL. Default: dualtoken-worker-thread.js next to this module
   * (`new URL('./dualtoken-worker-thread.js', import.meta.url)`; a bundler that rewrites that
   * pattern, such as Vite or webpack, copies it; with others copy the file next to your bundle
   * or pass its URL here).
   */
  worker?: Worker | URL | string;
  onProgress?: (p: LoadProgress) => void;
  onDownloadStats?: (stats: HttpReaderStats) => void;
}

type Request = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

interface Pending {
  resolve: (r: WorkerResult) => void;
  reject: (e: Error) => void;
  onProgress?: (p: LoadProgress) => void;
}

/** An Error as the worker threw it: same name (DeviceLostError, NonFiniteError, ...) and message. */
function rebuild(error: { name: string; message: string; stack?: string }): Error {
  const e = new Error(error.message);
  e.name = error.name;
  if (error.stack) e.stack = `${error.name}: ${error.message}\n    (in the DualToken worker)\n${error.stack.split('\n').slice(1).join('\n')}`;
  return e;
}

export class DualTokenWorker {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failed: Error | undefined;
  private disposed = false;
  /** Set once loaded. */
  info!: WorkerModelInfo;

  private constructor(
    readonly worker: Worker,
    private readonly own: boolean,
  ) {
    worker.addEventListener('message', (ev: MessageEvent<WorkerResponse>) => this.receive(ev.data));
    worker.addEventListener('error', (ev: ErrorEvent) => this.fail(new Error(`DualTokenWorker: the worker failed: ${ev.message || 'script error (could it not be loaded? check its URL)'}`)));
    worker.addEventListener('messageerror', () => this.fail(new Error('DualTokenWorker: a message from the worker could not be read')));
  }

  /** Starts a worker (or uses `opts.worker`) and loads the model at `url` in it (see loadDualTokenFromUrl). */
  static async load(url: string, opts: WorkerLoadOptions = {}): Promise<DualTokenWorker> {
    const { worker: given, onProgress, onDownloadStats, ...settings } = opts;
    let worker: Worker;
    let own = true;
    if (given instanceof Worker) {
      worker = given;
      own = false;
    } else if (given !== undefined) worker = new Worker(given, { type: 'module', name: 'dualtoken' });
    else worker = new Worker(new URL('./dualtoken-worker-thread.js', import.meta.url), { type: 'module', name: 'dualtoken' });
    const client = new DualTokenWorker(worker, own);
    try {
      client.info = (await client.call({ op: 'load', url: new URL(url, location.href).href, settings }, [], onProgress)) as WorkerModelInfo;
    } catch (e) {
      if (own) worker.terminate();
      throw e;
    }
    onDownloadStats?.(client.info.download ?? { requests: 0, networkBytes: 0, cacheHits: 0, cacheBytes: 0 });
    return client;
  }

  get config(): DualTokenConfig {
    return this.info.config;
  }

  /** The model's input size S (pixel_values are [B, 3, S, S]). */
  get imageSize(): number {
    return this.info.imageSize;
  }

  /** The worker's WebGPU adapter, in words. */
  get adapter(): string {
    return this.info.adapter;
  }

  /**
   * Images of any size -> codes: decoded (JPEG through libjpeg-turbo, as Pillow), preprocessed and
   * encoded in the worker. ImageBitmaps and ArrayBuffers are transferred (detached here).
   * `returnInputs`: also the S x S 8-bit images the model saw.
   */
  async encodeImages(images: WorkerImage[], opts: { exifRotate?: boolean; returnInputs?: boolean } = {}): Promise<EncodeImagesResult> {
    const transfer: Transferable[] = [];
    for (const img of images) {
      if (img instanceof ArrayBuffer || (typeof ImageBitmap !== 'undefined' && img instanceof ImageBitmap)) transfer.push(img);
    }
    return (await this.call({ op: 'encodeImages', images, exifRotate: opts.exifRotate, returnInputs: opts.returnInputs }, transfer)) as EncodeImagesResult;
  }

  /** pixel_values f32 [B, 3, S, S] -> codes (the array is transferred). */
  async encode(pixelValues: Float32Array, batch: number): Promise<EncodeResult> {
    return (await this.call({ op: 'encode', pixelValues, batch }, transferable(pixelValues))) as EncodeResult;
  }

  /** Pixel codes int32 [B, h, w, D] -> reconstruction f32 [B, 3, R, R] and 8-bit images (the array is transferred). */
  async decode(pixelCodes: Int32Array, batch: number): Promise<DecodeResult> {
    return (await this.call({ op: 'decode', pixelCodes, batch }, transferable(pixelCodes))) as DecodeResult;
  }

  /**
   * Zero-shot classification of images against texts (strings, through the tokenizer.json beside
   * the model): sigmoid probabilities [B, T], as DualToken.classify. The first call loads the
   * text tower (its tensors through the same HTTP range reader and Cache API as the image
   * weights; `onProgress` sees that load) and says what it took in `textLoad`. Images are
   * transferred as in encodeImages.
   */
  async classify(images: WorkerImage[], texts: string[], opts: { exifRotate?: boolean; onProgress?: (p: LoadProgress) => void } = {}): Promise<WorkerClassifyResult> {
    const transfer: Transferable[] = [];
    for (const img of images) {
      if (img instanceof ArrayBuffer || (typeof ImageBitmap !== 'undefined' && img instanceof ImageBitmap)) transfer.push(img);
    }
    return (await this.call({ op: 'classify', images, texts, exifRotate: opts.exifRotate }, transfer, opts.onProgress)) as WorkerClassifyResult;
  }

  /** GPU memory held by the model in the worker. */
  async memory(): Promise<GpuMemory> {
    return (await this.call({ op: 'memory' })) as GpuMemory;
  }

  /**
   * Frees the model (the calls already running finish, later ones are refused) and, for a
   * worker started here, ends the worker.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    try {
      if (!this.failed) await this.call({ op: 'dispose' });
    } finally {
      this.disposed = true;
      if (this.own) this.worker.terminate();
      this.fail(new Error('DualTokenWorker: the model was disposed'));
    }
  }

  private call(req: Request, transfer: Transferable[] = [], onProgress?: (p: LoadProgress) => void): Promise<WorkerResult> {
    if (this.disposed) return Promise.reject(new Error(`DualTokenWorker: the model was disposed (${req.op})`));
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise<WorkerResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      try {
        this.worker.postMessage({ ...req, id } as WorkerRequest, transfer);
      } catch (e) {
        this.pending.delete(id);
        reject(e as Error);
      }
    });
  }

  private receive(msg: WorkerResponse): void {
    if ('ready' in msg) return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    if ('progress' in msg) {
      p.onProgress?.(msg.progress);
      return;
    }
    this.pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(rebuild(msg.error));
  }

  /** The worker is gone: every call waiting on it, and every later one, fails with `e`. */
  private fail(e: Error): void {
    this.failed ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

function transferable(a: ArrayBufferView): Transferable[] {
  return a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? [a.buffer] : [];
}

/** DualTokenWorker.load: the model at `url` in a Web Worker of its own. */
export function loadDualTokenInWorker(url: string, opts: WorkerLoadOptions = {}): Promise<DualTokenWorker> {
  return DualTokenWorker.load(url, opts);
}
