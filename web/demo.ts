// The demo page (web/index.html): load a model by URL, tokenize an image, show the reconstruction,
// the code grids and the embedding. The engine runs in a Web Worker (./dualtoken-worker.js, the
// package entry `dualtoken-webgpu/worker`): the page stays responsive while weights load and
// kernels compile, and it holds no engine code.
//
// URL parameters (also what the browser test uses): ?model=<url> sets the model field,
// &image=<url> picks an image, &run=1 loads the model and runs that image at once.
// document.body.dataset.state: starting | ready | loading | loaded | running | done | error.
//
// window.dualtokenDemo (DemoState below) is the page's state, for tests and automation: the last
// run's codes and embedding, timings, the last error and the control it belongs to, the busy
// stages shown. Read it; do not write it. README.md (web/) documents it.
import { encodeSafetensors } from '../src/core/safetensors.js';
import {
  DEFAULT_CACHE_NAME,
  loadDualTokenInWorker,
  type DualTokenWorker,
  type EncodeImagesResult,
  type HttpReaderStats,
  type LoadProgress,
  type RgbImage,
  type WorkerClassifyResult,
} from '../src/browser/worker-client.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

interface Timing {
  stage: string;
  ms: number;
  note?: string;
}

export interface DemoState {
  adapter?: string;
  model?: DualTokenWorker;
  modelUrl?: string;
  loadMs?: number;
  download?: HttpReaderStats;
  timings: Timing[];
  runs: number;
  pixelCodes?: Int32Array;
  semanticCodes?: Int32Array;
  embedding?: Float32Array;
  /** f32 [1, L, C]: the semantic features (z_q_sem) of the last run. */
  semanticFeatures?: Float32Array;
  /** The results on the page are from an earlier run (a new run started or failed): greyed, not downloadable. */
  stale?: boolean;
  /** The last error, and the control it belongs to. */
  error?: string;
  errorAt?: 'model' | 'image';
  /** Every busy-stage text shown, in order (the browser test reads it). */
  stages: string[];
  /** Whether every control was disabled while the last run was busy. */
  controlsDisabledWhileBusy?: boolean;
  /** The image name of the last run (download file names). */
  imageName?: string;
  /** Labels as parsed from the labels box, the prompts made with the template, and their sigmoid probabilities for the last run's image (undefined until classified). */
  labels?: string[];
  prompts?: string[];
  probs?: Float32Array;
  logits?: Float32Array;
  /** idle (no labels) | waiting (labels, no image yet) | loading (the text tower) | classifying | done | error. */
  labelsState: 'idle' | 'waiting' | 'loading' | 'classifying' | 'done' | 'error';
  labelsError?: string;
  /** The text tower's load, when it happened (its ms and what was downloaded). */
  textLoad?: { ms: number; download: HttpReaderStats };
  /** Label sets classified. */
  classifications: number;
}

const state: DemoState = { timings: [], runs: 0, stages: [], labelsState: 'idle', classifications: 0 };
/** The image of the last successful run (classified against the labels). */
let lastInput: Blob | undefined;
declare global {
  interface Window {
    dualtokenDemo: DemoState;
  }
}
window.dualtokenDemo = state;

let busy = false;

function setState(s: string): void {
  document.body.dataset.state = s;
}

// ---------------------------------------------------------------------------------------------
// Busy state, errors next to their control

/** The controls a run or a load must not be started from while one is going. */
function controls(): (HTMLButtonElement | HTMLInputElement)[] {
  return Array.from(document.querySelectorAll<HTMLButtonElement | HTMLInputElement>('#modelSection button, #modelSection input, #imageSection button, #imageSection input'));
}

function setBusy(stage: string | undefined): void {
  busy = stage !== undefined;
  for (const c of controls()) c.disabled = busy;
  $('drop').classList.toggle('disabled', busy);
  const status = $('status');
  status.hidden = !busy;
  if (stage !== undefined) {
    $('statusText').textContent = stage;
    state.stages.push(stage);
  }
}

function stage(text: string): void {
  $('statusText').textContent = text;
  state.stages.push(text);
}

function clearErrors(): void {
  $('modelError').textContent = '';
  $('imageError').textContent = '';
  state.error = undefined;
  state.errorAt = undefined;
}

/**
 * A fetch that failed without an HTTP answer ("Failed to fetch" in Chromium, "NetworkError when
 * attempting to fetch resource." in Firefox, "Load failed" in Safari) says nothing about why: on a
 * page that fetches from another origin the usual cause is a server that sends no CORS headers.
 */
export function explainFetchError(message: string, origin: string = location.origin): string {
  if (!/Failed to fetch|NetworkError when attempting to fetch|Load failed/.test(message)) return message;
  return `${message}\n→ could not fetch the URL: a network error, or the server sends no CORS headers for this page's origin (${origin}); a server on another origin must answer with Access-Control-Allow-Origin (and, for model weights, expose Content-Range)`;
}

function showError(e: unknown, at: 'model' | 'image'): void {
  const msg = explainFetchError(e instanceof Error ? e.message : String(e));
  state.error = msg;
  state.errorAt = at;
  $(at === 'model' ? 'modelError' : 'imageError').textContent = msg;
  setState('error');
  console.error(e);
}

/** After the busy state is over (the status bar hidden, the layout settled): the error in view. */
function revealError(): void {
  if (!state.errorAt) return;
  const err = $(state.errorAt === 'model' ? 'modelError' : 'imageError');
  // The whole section (the control that failed and its error) when it fits, else the error itself.
  const section = err.closest('section')!;
  if (section.getBoundingClientRect().height <= window.innerHeight) section.scrollIntoView({ block: 'nearest' });
  else err.scrollIntoView({ block: 'nearest' });
}

/** The results on the page no longer belong to the current input: greyed, not downloadable. */
function markStale(): void {
  const had = state.pixelCodes !== undefined || state.stale;
  state.pixelCodes = state.semanticCodes = state.embedding = state.semanticFeatures = undefined;
  for (const id of ['downloadCodes', 'downloadSafetensors', 'downloadEmbedding']) $<HTMLButtonElement>(id).disabled = true;
  // The label probabilities belong to the previous image too.
  state.probs = state.logits = undefined;
  $('labelBars').classList.add('stale');
  if (!had) return;
  state.stale = true;
  document.querySelectorAll('.result').forEach((el) => el.classList.add('stale'));
}

function markFresh(): void {
  state.stale = false;
  document.querySelectorAll('.result').forEach((el) => el.classList.remove('stale'));
}

function mb(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

// ---------------------------------------------------------------------------------------------
// Model (in the worker)

/** Which control a failure belongs to: the model's load, or the image's run. */
class ModelError extends Error {}

async function loadModel(): Promise<DualTokenWorker> {
  const url = $<HTMLInputElement>('modelUrl').value.trim();
  if (state.model && state.modelUrl === url) return state.model;
  const old = state.model;
  state.model = undefined;
  await old?.dispose();
  state.textLoad = undefined;
  $('textProgress').hidden = true;
  setState('loading');
  const bar = $<HTMLProgressElement>('loadBar');
  const text = $('loadText');
  bar.value = 0;
  text.textContent = `opening ${url} …`;
  stage(`loading the model: ${url}`);
  const t0 = performance.now();
  let model: DualTokenWorker;
  try {
    model = await loadDualTokenInWorker(url, {
      onProgress: (p: LoadProgress) => {
        bar.value = p.totalBytes ? p.bytes / p.totalBytes : 1;
        text.textContent = `${p.tensors}/${p.totalTensors} tensors · ${mb(p.bytes)} / ${mb(p.totalBytes)}`;
        $('statusText').textContent = `loading the weights: ${p.tensors}/${p.totalTensors} tensors, ${mb(p.bytes)} of ${mb(p.totalBytes)}`;
      },
      onDownloadStats: (s) => (state.download = s),
    });
  } catch (e) {
    bar.value = 0;
    text.textContent = `failed to load ${url} (see below)`;
    throw new ModelError((e as Error).message);
  }
  state.loadMs = performance.now() - t0;
  state.model = model;
  state.modelUrl = url;
  state.adapter = model.adapter;
  $('adapter').textContent = `WebGPU (in a worker): ${model.adapter}`;
  const d = state.download;
  bar.value = 1;
  text.textContent = `loaded in ${(state.loadMs / 1000).toFixed(2)} s` + (d ? ` · downloaded ${mb(d.networkBytes)}, from cache ${mb(d.cacheBytes)}${d.cacheDisabled ? ` (cache off: ${d.cacheDisabled})` : ''}` : '');
  setState('loaded');
  return model;
}

async function loadOnly(): Promise<void> {
  if (busy) return;
  clearErrors();
  markStale(); // results of the previous model
  setBusy('loading the model');
  try {
    await loadModel();
  } catch (e) {
    showError(e, 'model');
  } finally {
    setBusy(undefined);
    revealError();
  }
}

// ---------------------------------------------------------------------------------------------
// Run

async function run(input: Blob, label: string): Promise<void> {
  if (busy) return;
  clearErrors();
  markStale();
  setBusy('starting');
  state.controlsDisabledWhileBusy = controls().every((c) => c.disabled);
  try {
    const model = await loadModel();
    setState('running');
    const timings: Timing[] = [];
    const time = async <T>(what: string, fn: () => Promise<T> | T, note?: string): Promise<T> => {
      stage(what);
      const t = performance.now();
      const r = await fn();
      timings.push({ stage: what, ms: performance.now() - t, note });
      return r;
    };
    const first = state.runs === 0;
    // The original as the browser shows it (the worker decodes the file itself: JPEG as Pillow does).
    await time('showing the original', async () => {
      const bitmap = await createImageBitmap(input).catch((e: Error) => {
        throw new Error(`${label}: not an image this browser can decode (${e.message})`);
      });
      const c = $<HTMLCanvasElement>('original');
      c.width = bitmap.width;
      c.height = bitmap.height;
      c.getContext('2d')!.drawImage(bitmap, 0, 0);
      $('originalCaption').textContent = `original · ${label} · ${bitmap.width}×${bitmap.height}`;
      bitmap.close();
    });
    const enc: EncodeImagesResult = await time(
      'encoding (image decode, preprocessing, SigLIP, both quantizers)',
      () => model.encodeImages([input], { returnInputs: true }),
      first ? 'first run: compiles its pipelines' : undefined,
    );
    drawRgb($<HTMLCanvasElement>('input'), enc.inputs![0]);
    $('inputCaption').textContent = `model input · ${model.imageSize}×${model.imageSize}`;
    const dec = await time('decoding (pixel codes → image)', () => model.decode(enc.pixelCodes.slice(), 1), first ? 'first run: compiles its pipelines' : undefined);
    await time('drawing', () => {
      drawRgb($<HTMLCanvasElement>('recon'), dec.images[0]); // 8-bit as the official saver: clamp((x + 1) * 127.5), truncated
      drawGrid($('pixGrid'), 'pixel', enc.pixelCodes, model.config.quantPix.codeShape);
      drawGrid($('semGrid'), 'semantic', enc.semanticCodes, model.config.quantSem.codeShape);
      drawEmbedding(enc.embedding);
    });
    $('reconCaption').textContent = `reconstruction · ${dec.shape[3]}×${dec.shape[2]}`;
    state.timings = timings;
    state.runs++;
    state.pixelCodes = enc.pixelCodes;
    state.semanticCodes = enc.semanticCodes;
    state.embedding = enc.embedding;
    state.semanticFeatures = enc.semanticFeatures;
    markFresh();
    state.imageName = label.replace(/\.[^.]*$/, '') || 'image';
    for (const id of ['downloadCodes', 'downloadSafetensors', 'downloadEmbedding']) $<HTMLButtonElement>(id).disabled = false;
    showTimings(timings);
    lastInput = input;
    setState('done');
    void classifyLabels(); // the labels (if any) against this image
  } catch (e) {
    showError(e, e instanceof ModelError ? 'model' : 'image');
  } finally {
    setBusy(undefined);
    revealError();
  }
}

// ---------------------------------------------------------------------------------------------
// Labels (zero-shot classification; the text tower loads at the first label)

/** One label per line, or comma-separated; blanks dropped. */
export function parseLabels(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** The template with `{}` replaced by the label (the label itself when the template has no `{}`). */
export function promptFor(template: string, label: string): string {
  return template.includes('{}') ? template.split('{}').join(label) : label;
}

let classifying = false;
let classifyAgain = false;
let labelsTimer: ReturnType<typeof setTimeout> | undefined;

function setLabelsState(s: DemoState['labelsState']): void {
  state.labelsState = s;
  document.body.dataset.labels = s;
}

/** Classifies the last run's image against the labels in the box (once at a time; the newest labels win). */
async function classifyLabels(): Promise<void> {
  if (classifying) {
    classifyAgain = true;
    return;
  }
  const labels = parseLabels($<HTMLTextAreaElement>('labels').value);
  const template = $<HTMLInputElement>('template').value;
  const prompts = labels.map((l) => promptFor(template, l));
  $('labelsError').textContent = '';
  state.labelsError = undefined;
  if (labels.length === 0) {
    state.labels = state.prompts = state.probs = state.logits = undefined;
    $('labelBars').replaceChildren();
    setLabelsState('idle');
    return;
  }
  const model = state.model;
  if (!model || !lastInput || state.stale) {
    $('labelBars').classList.add('stale');
    setLabelsState('waiting');
    $('labelsHint').textContent = 'run an image: its labels are scored then';
    return;
  }
  classifying = true;
  const loadsText = !state.textLoad;
  setLabelsState(loadsText ? 'loading' : 'classifying');
  const bar = $<HTMLProgressElement>('textBar');
  const text = $('textText');
  if (loadsText) {
    $('textProgress').hidden = false;
    bar.value = 0;
    text.textContent = 'loading the text tower (tokenizer.json, text weights) …';
  }
  try {
    const r: WorkerClassifyResult = await model.classify([lastInput], prompts, {
      onProgress: (p: LoadProgress) => {
        bar.value = p.totalBytes ? p.bytes / p.totalBytes : 1;
        text.textContent = `text tower: ${p.tensors}/${p.totalTensors} tensors · ${mb(p.bytes)} / ${mb(p.totalBytes)}`;
        setLabelsState('loading');
      },
    });
    if (r.textLoad) {
      state.textLoad = r.textLoad;
      const d = r.textLoad.download;
      bar.value = 1;
      text.textContent = `text tower loaded in ${(r.textLoad.ms / 1000).toFixed(2)} s · downloaded ${mb(d.networkBytes)}, from cache ${mb(d.cacheBytes)}`;
    }
    if (model !== state.model) return; // the model changed meanwhile
    state.labels = labels;
    state.prompts = prompts;
    state.probs = r.probs.slice(0, r.count); // image 0
    state.logits = r.logitsPerImage.slice(0, r.count);
    state.classifications++;
    drawLabelBars(labels, prompts, state.probs);
    $('labelsHint').textContent = 'sigmoid probability per label (independent, not a softmax)';
    setLabelsState('done');
  } catch (e) {
    const msg = explainFetchError(e instanceof Error ? e.message : String(e));
    state.labelsError = msg;
    $('labelsError').textContent = msg;
    if (loadsText) text.textContent = 'the text tower failed to load (see below)';
    setLabelsState('error');
    console.error(e);
  } finally {
    classifying = false;
    if (classifyAgain) {
      classifyAgain = false;
      void classifyLabels();
    }
  }
}

function pct(p: number): string {
  return p >= 0.001 ? `${(p * 100).toFixed(2)} %` : p.toExponential(2);
}

function drawLabelBars(labels: string[], prompts: string[], probs: Float32Array): void {
  const el = $('labelBars');
  el.classList.remove('stale');
  const rows: HTMLElement[] = [];
  labels.forEach((label, i) => {
    const name = document.createElement('div');
    name.textContent = label;
    name.title = prompts[i];
    const bar = document.createElement('div');
    bar.className = 'bar';
    const fill = document.createElement('div');
    fill.style.width = `${Math.min(100, Math.max(0, probs[i] * 100))}%`;
    bar.append(fill);
    const value = document.createElement('div');
    value.className = 'p';
    value.textContent = pct(probs[i]);
    rows.push(name, bar, value);
  });
  el.replaceChildren(...rows);
}

function labelsChanged(): void {
  clearTimeout(labelsTimer);
  labelsTimer = setTimeout(() => void classifyLabels(), 300);
}

function drawRgb(canvas: HTMLCanvasElement, img: RgbImage): void {
  canvas.width = img.width;
  canvas.height = img.height;
  const rgba = new Uint8ClampedArray(img.width * img.height * 4);
  for (let i = 0; i < img.width * img.height; i++) {
    rgba[4 * i] = img.data[3 * i];
    rgba[4 * i + 1] = img.data[3 * i + 1];
    rgba[4 * i + 2] = img.data[3 * i + 2];
    rgba[4 * i + 3] = 255;
  }
  canvas.getContext('2d')!.putImageData(new ImageData(rgba, img.width, img.height), 0, 0);
}

function showTimings(timings: Timing[]): void {
  const rows: Timing[] = [];
  if (state.loadMs !== undefined) {
    const d = state.download;
    rows.push({ stage: 'model load (config, header, weights → GPU)', ms: state.loadMs, note: d ? `${d.requests} requests, ${mb(d.networkBytes)} downloaded, ${mb(d.cacheBytes)} from cache` : undefined });
  }
  rows.push(...timings);
  const total = timings.reduce((s, t) => s + t.ms, 0);
  $('timings').replaceChildren(...rows.map((t) => tr(t.stage, t.ms, t.note)), tr('image total', total, `run #${state.runs}`));
}

function tr(what: string, ms: number, note?: string): HTMLTableRowElement {
  const row = document.createElement('tr');
  [what, `${ms.toFixed(1)} ms`, note ?? ''].forEach((c, i) => {
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
// The embedding (pooler_output, the language-aligned image vector): one bar per dimension.

function drawEmbedding(e: Float32Array): void {
  const canvas = $<HTMLCanvasElement>('embedding');
  const H = 64;
  canvas.width = Math.max(e.length, 1);
  canvas.height = H;
  const ctx = canvas.getContext('2d')!;
  ctx.clearRect(0, 0, canvas.width, H);
  let max = 0;
  let sq = 0;
  for (const v of e) {
    max = Math.max(max, Math.abs(v));
    sq += v * v;
  }
  const scale = max > 0 ? (H / 2 - 1) / max : 0;
  for (let i = 0; i < e.length; i++) {
    const h = e[i] * scale;
    ctx.fillStyle = e[i] >= 0 ? '#3b5bdb' : '#e8590c';
    ctx.fillRect(i, h >= 0 ? H / 2 - h : H / 2, 1, Math.max(Math.abs(h), 0.5));
  }
  const first = Array.from(e.subarray(0, 6), (v) => v.toFixed(3)).join(', ');
  $('embeddingStats').textContent = `${e.length} dimensions · L2 norm ${Math.sqrt(sq).toFixed(3)} · |max| ${max.toFixed(3)} · [${first}${e.length > 6 ? ', …' : ''}]`;
}

// ---------------------------------------------------------------------------------------------
// Downloads in the CLI's two formats: the codes as `dualtoken encode --format json` writes them
// (`dualtoken decode codes.json` reads them), the embedding as JSON; and the safetensors file
// `dualtoken encode` writes: int32 code_pix [B,h,w,D], int32 code_sem [B,hs,ws,Ds],
// f32 z_q_sem [B,L,C], f32 pooler_output [B,C] (metadata: files).

function download(name: string, content: string | Uint8Array, type = 'application/json'): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([content as BlobPart], { type }));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function downloadCodes(): void {
  const m = state.model;
  if (!m || !state.pixelCodes || !state.semanticCodes) return;
  const shape = [1, ...m.config.quantPix.codeShape];
  const semanticShape = [1, ...m.config.quantSem.codeShape];
  download(
    `${state.imageName ?? 'image'}.codes.json`,
    JSON.stringify({ shape, pixel: Array.from(state.pixelCodes), semantic_shape: semanticShape, semantic: Array.from(state.semanticCodes), files: [state.imageName ?? 'image'] }),
  );
}

function downloadSafetensors(): void {
  const m = state.model;
  if (!m || !state.pixelCodes || !state.semanticCodes || !state.semanticFeatures || !state.embedding) return;
  const [h, w, D] = m.config.quantPix.codeShape;
  const [hs, ws, Ds] = m.config.quantSem.codeShape;
  const C = state.embedding.length;
  const bytes = encodeSafetensors(
    {
      code_pix: { dtype: 'I32', shape: [1, h, w, D], data: state.pixelCodes },
      code_sem: { dtype: 'I32', shape: [1, hs, ws, Ds], data: state.semanticCodes },
      z_q_sem: { dtype: 'F32', shape: [1, state.semanticFeatures.length / C, C], data: state.semanticFeatures },
      pooler_output: { dtype: 'F32', shape: [1, C], data: state.embedding },
    },
    { files: JSON.stringify([state.imageName ?? 'image']) },
  );
  download(`${state.imageName ?? 'image'}.safetensors`, bytes, 'application/octet-stream');
}

function downloadEmbedding(): void {
  if (!state.embedding) return;
  download(`${state.imageName ?? 'image'}.embedding.json`, JSON.stringify({ shape: [1, state.embedding.length], embedding: Array.from(state.embedding), files: [state.imageName ?? 'image'] }));
}

// ---------------------------------------------------------------------------------------------
// Wiring

async function runUrl(url: string): Promise<void> {
  let blob: Blob;
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    blob = await res.blob();
  } catch (e) {
    if (busy) return;
    clearErrors();
    markStale();
    showError(e, 'image');
    revealError();
    return;
  }
  await run(blob, url.split('/').pop() ?? url);
}

function wire(): void {
  $('load').addEventListener('click', () => {
    state.modelUrl = undefined; // reload even when the URL did not change
    void loadOnly();
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
  $('downloadCodes').addEventListener('click', downloadCodes);
  $('downloadSafetensors').addEventListener('click', downloadSafetensors);
  $('downloadEmbedding').addEventListener('click', downloadEmbedding);
  $('labels').addEventListener('input', labelsChanged);
  $('template').addEventListener('input', labelsChanged);
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    if (!busy) drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f && !busy) void run(f, f.name);
  });
}

async function main(): Promise<void> {
  wire();
  const params = new URLSearchParams(location.search);
  const model = params.get('model');
  if (model) $<HTMLInputElement>('modelUrl').value = model;
  if (!('gpu' in navigator) || !navigator.gpu) {
    $('adapter').textContent = 'WebGPU: unavailable';
    showError(new Error(isSecureContext ? 'WebGPU is not available in this browser: use one with WebGPU enabled (Chrome/Edge 113+, Firefox 141+, Safari 26+)' : 'WebGPU needs a secure context: open this page over https or from http://localhost'), 'model');
    return;
  }
  $('adapter').textContent = 'WebGPU: in a worker, once a model is loaded';
  setState('ready');
  const image = params.get('image');
  if (params.get('run') === '1') {
    if (image) await runUrl(image);
    else await loadOnly();
  }
}

void main();
