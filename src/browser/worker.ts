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
import type { WorkerClassifyResult, WorkerImage, WorkerLoadSettings, WorkerModelInfo, WorkerRequest, WorkerResponse, WorkerResult } from './worker-protocol.js';
import type { HttpReader, HttpReaderStats } from './http-reader.js';
import type { LoadProgress } from '../core/weights.js';
import type { TensorSource } from '../core/tensor-source.js';
import { HfTextTokenizer } from '../core/tokenizer.js';
import { LOGIT_BIAS, LOGIT_SCALE, usedByText } from '../model/text.js';
import { openModelUrl, sumStats } from './model-url.js';

interface WorkerScope {
  postMessage(message: WorkerResponse, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (ev: MessageEvent<WorkerRequest>) => void): void;
}
const scope = globalThis as unknown as WorkerScope;

let model: DualToken | undefined;
let loading: Promise<DualToken> | undefined;
let gpu: Gpu | undefined;
let modelUrl: string | undefined;
let loadSettings: WorkerLoadSettings = {};
/** Set while the text tower is being loaded (by the classify call with this id); cleared once loaded. */
let textLoad: { reportTo: number; t0: number } | undefined;
let textReady = false;

/** The text tensors read whole (progress counts them): the tower's uploads and the logit scale and bias. The token embedding table is read a row at a time, on demand. */
function isTextTensor(name: string): boolean {
  return usedByText(name) || name === LOGIT_SCALE || name === LOGIT_BIAS;
}

/** The HTTP readers of the text tower's weights (its download counters). */
let textReaders: HttpReader[] = [];

/**
 * The text tower's weights: the model's weights file reopened through HttpReader (Range requests,
 * Cache API), only its text tensors planned and read; each read is reported as load progress to
 * the classify call that started the load.
 */
async function openTextSource(): Promise<TensorSource> {
  const files = await openModelUrl(modelUrl!, loadSettings);
  textReaders = files.readers;
  const source = files.source;
  const names = source.names().filter(isTextTensor);
  files.plan(names);
  const totalBytes = names.reduce((n, x) => n + (source.info(x)?.byteLength ?? 0), 0);
  const progress: LoadProgress = { tensors: 0, totalTensors: names.length, bytes: 0, totalBytes };
  const report = () => {
    if (textLoad) post({ id: textLoad.reportTo, progress: { ...progress } });
  };
  report();
  const wrapped: TensorSource = {
    label: source.label,
    names: () => source.names(),
    info: (n) => source.info(n),
    read: async (n) => {
      const r = await source.read(n);
      if (isTextTensor(n)) {
        progress.tensors++;
        progress.bytes += r.byteLength;
        report();
      }
      return r;
    },
    close: async () => {
      await source.close?.();
    },
  };
  if (source.readRange) wrapped.readRange = (n, o, l) => source.readRange!(n, o, l);
  return wrapped;
}

/** tokenizer.json beside the model (fetched at the first labels). */
async function fetchTokenizer(m: DualToken): Promise<HfTextTokenizer> {
  const text = m.config.text;
  if (!text) throw new Error(`${modelUrl}: this model's config has no text_config (no text tower)`);
  // The model folder: the URL itself, or the folder of a weights file's URL (as openModelUrl).
  const u = new URL(modelUrl!);
  if (!/\.(safetensors|pt|pth|ckpt|index\.json)$/i.test(u.pathname) && !u.pathname.endsWith('/')) u.pathname += '/';
  const url = new URL('tokenizer.json', u).href;
  let res: Response;
  try {
    res = await fetch(url, { headers: loadSettings.headers });
  } catch (e) {
    throw new Error(`${url}: cannot fetch the tokenizer (${(e as Error).message})`);
  }
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${res.statusText} (labels need a tokenizer.json beside the model)`);
  let json: object;
  try {
    json = (await res.json()) as object;
  } catch (e) {
    throw new Error(`${url}: not valid JSON (${(e as Error).message})`);
  }
  return new HfTextTokenizer(json, { length: text.maxPositionEmbeddings, padId: text.padTokenId, label: url });
}

let textSetup: Promise<void> | undefined;

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
      modelUrl = req.url;
      loadSettings = req.settings;
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
    case 'classify': {
      const m = loaded('classify');
      let first = false;
      if (!textReady) {
        first = !textLoad; // this call loads the text tower (its progress goes to this call)
        if (first) textLoad = { reportTo: req.id, t0: performance.now() };
        textSetup ??= (async () => {
          const tokenizer = await fetchTokenizer(m);
          m.configureText({ textSource: openTextSource, tokenizer });
        })().catch((e) => {
          textSetup = undefined;
          throw e;
        });
        try {
          await textSetup;
          await m.text().load();
        } catch (e) {
          if (first) textLoad = undefined;
          throw e;
        }
        textReady = true;
      }
      const rgbs = await Promise.all(req.images.map((img) => toRgb(img, req.exifRotate)));
      const result: WorkerClassifyResult = await m.classify(rgbs, req.texts);
      if (first && textLoad) {
        result.textLoad = { ms: performance.now() - textLoad.t0, download: sumStats(textReaders) };
        textLoad = undefined;
      }
      return result;
    }
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
