// The engine in a Web Worker (bundled by scripts/build-web.mjs into dist/web/dualtoken-worker-thread.js):
// the device, the kernels and the weights live here; the page talks to it through
// DualTokenWorker (worker-client.ts). One model per worker. Requests are answered in any order
// (each carries its id); calls may overlap as on DualToken itself. Results go back transferred
// (their ArrayBuffers move to the page, nothing is copied).
import type { Gpu } from '../core/gpu.js';
import type { RgbImage } from '../core/image.js';
import type { DualToken } from '../model/dualtoken.js';
import { imageToRgb, preprocessImages } from './image.js';
import { loadDualTokenFromUrl } from './load.js';
import type { WorkerImage, WorkerModelInfo, WorkerRequest, WorkerResponse, WorkerResult } from './worker-protocol.js';
import type { HttpReaderStats } from './http-reader.js';

interface WorkerScope {
  postMessage(message: WorkerResponse, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (ev: MessageEvent<WorkerRequest>) => void): void;
}
const scope = globalThis as unknown as WorkerScope;

let model: DualToken | undefined;
let loading: Promise<DualToken> | undefined;
let gpu: Gpu | undefined;

function post(message: WorkerResponse, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

/** The buffers of a result, for transfer (each once; views of one buffer share it). */
function buffersOf(result: WorkerResult): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  const visit = (v: unknown, depth: number) => {
    if (depth > 3 || v === null || typeof v !== 'object') return;
    if (ArrayBuffer.isView(v)) {
      if (v.buffer instanceof ArrayBuffer) out.add(v.buffer);
      return;
    }
    for (const x of Array.isArray(v) ? v : Object.values(v)) visit(x, depth + 1);
  };
  visit(result, 0);
  return [...out];
}

async function toRgb(img: WorkerImage, exifRotate: boolean | undefined): Promise<RgbImage> {
  const blob = img instanceof ArrayBuffer ? new Blob([img]) : img;
  try {
    return await imageToRgb(blob as Parameters<typeof imageToRgb>[0], { gpu, exifRotate });
  } finally {
    if (typeof ImageBitmap !== 'undefined' && img instanceof ImageBitmap) img.close(); // transferred to us: ours to free
  }
}

function loaded(what: string): DualToken {
  if (!model) throw new Error(`DualTokenWorker: ${what} before the model was loaded`);
  return model;
}

async function handle(req: WorkerRequest): Promise<WorkerResult> {
  switch (req.op) {
    case 'load': {
      if (loading) throw new Error('DualTokenWorker: this worker already holds a model (one per worker)');
      const t0 = performance.now();
      let download: HttpReaderStats | undefined;
      loading = loadDualTokenFromUrl(req.url, {
        ...req.settings,
        onProgress: (progress) => post({ id: req.id, progress }),
        onDownloadStats: (s) => (download = s),
      });
      try {
        model = await loading;
      } catch (e) {
        loading = undefined;
        throw e;
      }
      gpu = model.gpu;
      const info: WorkerModelInfo = {
        config: model.config,
        imageSize: model.imageSize,
        adapter: model.gpu.describe(),
        download,
        loadMs: performance.now() - t0,
        kernelChoice: model.kernelChoice(),
      };
      return info;
    }
    case 'encodeImages': {
      const m = loaded('encodeImages');
      const rgbs = await Promise.all(req.images.map((img) => toRgb(img, req.exifRotate)));
      if (!req.returnInputs) return m.encodeImages(rgbs);
      // The same pixel_values as encodeImages makes, kept so the page can show the model's input.
      const pre = await preprocessImages(m.gpu, rgbs, m.imageSize);
      return { ...(await m.encode(pre.pixelValues, pre.batch)), inputs: pre.images };
    }
    case 'encode':
      return loaded('encode').encode(req.pixelValues, req.batch);
    case 'decode':
      return loaded('decode').decode(req.pixelCodes, req.batch);
    case 'memory':
      return loaded('memory').memory();
    case 'dispose': {
      const m = model;
      model = undefined;
      m?.dispose();
      return undefined;
    }
  }
}

scope.addEventListener('message', (ev) => {
  const req = ev.data;
  handle(req).then(
    (result) => post({ id: req.id, ok: true, result }, buffersOf(result)),
    (e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e));
      post({ id: req.id, ok: false, error: { name: err.name, message: err.message, stack: err.stack } });
    },
  );
});
post({ id: 0, ready: true });
