// The demo page (web/index.html): load a model by URL, tokenize an image, show the reconstruction
// and the code grids. Imports the engine from the published bundle (./dualtoken.js at run time).
//
// URL parameters (also what the browser test uses): ?model=<url> sets the model field,
// &image=<url> picks an image, &run=1 loads the model and runs that image at once.
// document.body.dataset.state: starting | ready | loading | loaded | running | done | error.
import {
  DEFAULT_CACHE_NAME,
  imageToRgb,
  loadDualTokenFromUrl,
  preprocessImages,
  reconToRgb,
  drawRgb,
  requestBrowserGpu,
  type DualToken,
  type Gpu,
  type HttpReaderStats,
  type ImageInput,
  type LoadProgress,
  type RgbImage,
} from '../src/browser/index.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

interface Timing {
  stage: string;
  ms: number;
  note?: string;
}

export interface DemoState {
  adapter?: string;
  model?: DualToken;
  modelUrl?: string;
  loadMs?: number;
  download?: HttpReaderStats;
  timings: Timing[];
  runs: number;
  pixelCodes?: Int32Array;
  semanticCodes?: Int32Array;
  error?: string;
}

const state: DemoState = { timings: [], runs: 0 };
declare global {
  interface Window {
    dualtokenDemo: DemoState;
  }
}
window.dualtokenDemo = state;

let gpuPromise: Promise<Gpu> | undefined;
let busy = false;

function setState(s: string): void {
  document.body.dataset.state = s;
}

function showError(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  state.error = msg;
  $('error').textContent = msg;
  setState('error');
  console.error(e);
}

function mb(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

function gpu(): Promise<Gpu> {
  gpuPromise ??= requestBrowserGpu().then((g) => {
    state.adapter = g.describe();
    const f = ['shader-f16', 'timestamp-query', 'subgroups'].filter((x) => g.has(x as 'shader-f16'));
    $('adapter').textContent = `WebGPU: ${state.adapter}${f.length ? ` · ${f.join(', ')}` : ''}`;
    return g;
  });
  return gpuPromise;
}

// ---------------------------------------------------------------------------------------------
// Model

async function loadModel(): Promise<DualToken> {
  const url = $<HTMLInputElement>('modelUrl').value.trim();
  if (state.model && state.modelUrl === url) return state.model;
  state.model?.dispose();
  state.model = undefined;
  setState('loading');
  const bar = $<HTMLProgressElement>('loadBar');
  const text = $('loadText');
  bar.value = 0;
  text.textContent = `opening ${url} …`;
  const t0 = performance.now();
  const model = await loadDualTokenFromUrl(url, {
    gpu: await gpu(),
    onProgress: (p: LoadProgress) => {
      bar.value = p.totalBytes ? p.bytes / p.totalBytes : 1;
      text.textContent = `${p.tensors}/${p.totalTensors} tensors · ${mb(p.bytes)} / ${mb(p.totalBytes)}`;
    },
    onDownloadStats: (s) => (state.download = s),
  });
  state.loadMs = performance.now() - t0;
  state.model = model;
  state.modelUrl = url;
  const d = state.download;
  bar.value = 1;
  text.textContent =
    `loaded in ${(state.loadMs / 1000).toFixed(2)} s · ${mb(model.weights.byteLength)} on the GPU` +
    (d ? ` · downloaded ${mb(d.networkBytes)}, from cache ${mb(d.cacheBytes)}${d.cacheDisabled ? ` (cache off: ${d.cacheDisabled})` : ''}` : '');
  setState('loaded');
  return model;
}

// ---------------------------------------------------------------------------------------------
// Run

async function run(input: ImageInput, label: string): Promise<void> {
  if (busy) return;
  busy = true;
  $('error').textContent = '';
  try {
    const model = await loadModel();
    setState('running');
    const g = model.gpu;
    const timings: Timing[] = [];
    const time = async <T>(stage: string, fn: () => Promise<T> | T, note?: string): Promise<T> => {
      const t = performance.now();
      const r = await fn();
      timings.push({ stage, ms: performance.now() - t, note });
      return r;
    };
    const first = state.runs === 0;
    const rgb = await time('image → RGB (decode, copyExternalImageToTexture)', () => imageToRgb(input, { gpu: g }));
    drawRgb($<HTMLCanvasElement>('original'), rgb);
    $('originalCaption').textContent = `original · ${label} · ${rgb.width}×${rgb.height}`;
    const S = model.imageSize;
    const pre = await time('preprocess (bicubic resize, crop, normalize)', () => preprocessImages(g, [rgb], S), first ? 'first run: compiles its kernels' : undefined);
    drawRgb($<HTMLCanvasElement>('input'), pre.images[0]);
    $('inputCaption').textContent = `model input · ${S}×${S}`;
    const enc = await time('encode (SigLIP + both quantizers)', () => model.encode(pre.pixelValues, 1), first ? 'first run: compiles its pipelines' : undefined);
    const dec = await time('decode (pixel codes → image)', () => model.decode(enc.pixelCodes, 1), first ? 'first run: compiles its pipelines' : undefined);
    await time('draw', () => {
      // 8-bit RGB made on the GPU by decode(); reconToRgb(dec.recon, dec.shape) gives the same on the CPU.
      const img: RgbImage = dec.images?.[0] ?? reconToRgb(dec.recon, dec.shape, 0);
      drawRgb($<HTMLCanvasElement>('recon'), img);
      drawGrid($('pixGrid'), 'pixel', enc.pixelCodes, model.config.quantPix.codeShape);
      drawGrid($('semGrid'), 'semantic', enc.semanticCodes, model.config.quantSem.codeShape);
    });
    $('reconCaption').textContent = `reconstruction · ${dec.shape[3]}×${dec.shape[2]}`;
    state.timings = timings;
    state.runs++;
    state.pixelCodes = enc.pixelCodes;
    state.semanticCodes = enc.semanticCodes;
    showTimings(timings);
    setState('done');
  } catch (e) {
    showError(e);
  } finally {
    busy = false;
  }
}

function showTimings(timings: Timing[]): void {
  const rows: Timing[] = [];
  if (state.loadMs !== undefined) {
    const d = state.download;
    rows.push({ stage: 'model load (config, header, weights → GPU)', ms: state.loadMs, note: d ? `${d.requests} requests, ${mb(d.networkBytes)} downloaded, ${mb(d.cacheBytes)} from cache` : undefined });
  }
  rows.push(...timings);
  const total = timings.reduce((s, t) => s + t.ms, 0);
  const body = $('timings');
  body.replaceChildren(
    ...rows.map((t) => tr(t.stage, t.ms, t.note)),
    tr('image total', total, `run #${state.runs}`),
  );
}

function tr(stage: string, ms: number, note?: string): HTMLTableRowElement {
  const row = document.createElement('tr');
  const cells = [stage, `${ms.toFixed(1)} ms`, note ?? ''];
  cells.forEach((c, i) => {
    const td = document.createElement('td');
    td.textContent = c;
    if (i === 1) td.className = 'num';
    if (i === 2) td.className = 'muted';
    row.append(td);
  });
  return row;
}

// ---------------------------------------------------------------------------------------------
// Code grids: one cell per token, coloured by its depth-0 code; hover shows the whole stack.

function codeColour(code: number): string {
  const hue = (code * 137.508) % 360; // golden angle: neighbouring codes get distant hues
  const light = 42 + ((code * 7) % 4) * 7;
  return `hsl(${hue.toFixed(1)} 68% ${light}%)`;
}

function drawGrid(el: HTMLElement, kind: string, codes: Int32Array, [h, w, D]: [number, number, number]): void {
  el.style.gridTemplateColumns = `repeat(${w}, 1fr)`;
  const cells: HTMLDivElement[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const stack = Array.from(codes.subarray((y * w + x) * D, (y * w + x + 1) * D));
      const cell = document.createElement('div');
      cell.style.background = codeColour(stack[0]);
      const text = `${kind} token (row ${y}, col ${x}): codes [${stack.join(', ')}] (depth 0 … ${D - 1})`;
      cell.title = text;
      cell.addEventListener('mouseenter', () => ($('hover').textContent = text));
      cells.push(cell);
    }
  }
  el.replaceChildren(...cells);
}

// ---------------------------------------------------------------------------------------------
// Wiring

async function runUrl(url: string): Promise<void> {
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    await run(await res.blob(), url.split('/').pop() ?? url);
  } catch (e) {
    showError(e);
  }
}

function wire(): void {
  $('load').addEventListener('click', () => {
    state.modelUrl = undefined; // reload even when the URL did not change
    loadModel().catch(showError);
  });
  $('modelUrl').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') $('load').click();
  });
  $('clearCache').addEventListener('click', async () => {
    if (typeof caches === 'undefined') return;
    await caches.delete(DEFAULT_CACHE_NAME);
    $('loadText').textContent = 'cache cleared';
  });
  $<HTMLInputElement>('file').addEventListener('change', (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void run(f, f.name);
  });
  document.querySelectorAll<HTMLButtonElement>('button.sample').forEach((b) => b.addEventListener('click', () => void runUrl(b.dataset.src!)));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f) void run(f, f.name);
  });
}

async function main(): Promise<void> {
  wire();
  const params = new URLSearchParams(location.search);
  const model = params.get('model');
  if (model) $<HTMLInputElement>('modelUrl').value = model;
  try {
    await gpu();
  } catch (e) {
    $('adapter').textContent = 'WebGPU: unavailable';
    showError(e);
    return;
  }
  setState('ready');
  const image = params.get('image');
  if (params.get('run') === '1') {
    if (image) await runUrl(image);
    else await loadModel().catch(showError);
  }
}

void main();
