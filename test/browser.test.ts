// The engine in a real browser: headless Chromium (Debian's, via playwright-core) with WebGPU,
// the web bundle (dist/web/, built here), the static server on a free loopback port. The test
// page loads the golden case `tiny` by URL (Range requests + Cache API), runs encode + decode in
// the page and hands the results back for comparison with the golden reference. No WebGPU in the
// browser is a failure, not a skip.
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe as suite, expect, it } from 'vitest';
import type { DemoState } from '../web/demo.js';
import type { FirstRuns, GoldenRun, JpegRun, WorkerRun } from '../web/test.js';
import { MemoryReader } from '../src/core/bytes.js';
import { openSafetensors } from '../src/core/safetensors.js';
import { decodeImage } from '../src/node/decode.js';
import { loadDualToken } from '../src/node/load.js';
import { loadTokenizerFile } from '../src/node/tokenizer.js';
import { REPO, buildWeb, collectPageLog, launchChromium, startWebServer, type RunningServer } from './helpers/browser.js';
import { FIXTURES, Golden, REL_TO_MAX, caseDir, compareFloat, describe } from './helpers/golden.js';

// The golden case folder itself (it also holds expected.safetensors and the input / recon PNGs).
const CASE_URL = '/golden/tiny/';
const WEIGHTS_PATH = '/golden/tiny/model.safetensors';
// The demo's default model (weights/tiny/ when present, else the golden case: the same weights).
const DEMO_MODEL_URL = '/models/tiny/';
const ARTIFACTS = join(REPO, 'test', 'artifacts');

let server: RunningServer;
let browser: Browser;
let page: Page;
let log: string[] = [];

/** page.evaluate, with the page's console and errors in the message when it throws. */
async function inPage<T, A = undefined>(fn: (arg: A) => Promise<T>, arg?: A): Promise<T> {
  try {
    return await page.evaluate(fn as (arg: unknown) => Promise<T>, arg);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- page log ---\n${log.join('\n')}`);
  }
}

beforeAll(async () => {
  buildWeb();
  server = await startWebServer();
  browser = await launchChromium();
  page = await browser.newPage();
  log = collectPageLog(page);
  await page.goto(`${server.url}/test.html`);
  await page.waitForFunction(() => 'dualtokenTest' in window, undefined, { timeout: 30_000 }).catch((e: Error) => {
    throw new Error(`test page did not start: ${e.message}\n${log.join('\n')}`);
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

suite('browser: headless Chromium with WebGPU', () => {
  let run: GoldenRun;
  let firstLoadBytes = 0;

  it('has WebGPU, a secure context and the Cache API', async () => {
    const env = await inPage(() => window.dualtokenTest.env());
    console.log(`browser ${browser.version()}; adapter: ${env.adapter ?? '-'}; features: ${env.features?.join(', ') ?? '-'}`);
    expect(env.error, 'WebGPU must work in the browser (this test fails rather than skips)').toBeUndefined();
    expect(env.webgpu).toBe(true);
    expect(env.secureContext).toBe(true);
    expect(env.cacheApi).toBe(true);
  });

  it('encodes and decodes golden case tiny by URL like the official model', async () => {
    server.resetStats();
    run = await inPage((url: string) => window.dualtokenTest.golden(url), CASE_URL);
    const served = server.stats.get(WEIGHTS_PATH);
    firstLoadBytes = served?.bytes ?? 0;
    console.log(`adapter ${run.adapter}; in-page ms ${JSON.stringify(Object.fromEntries(Object.entries(run.ms).map(([k, v]) => [k, Math.round(v)])))}`);
    console.log(`first load: ${served?.requests} range requests, ${firstLoadBytes} bytes of ${statSync(join(caseDir('tiny'), 'model.safetensors')).size}; page stats ${JSON.stringify(run.download)}`);

    const golden = await Golden.open('tiny');
    // Codes: identical.
    expect(run.pixelCodes).toEqual(Array.from((await golden.get('code_pix')).data));
    expect(run.semanticCodes).toEqual(Array.from((await golden.get('code_sem')).data));
    // Floats: 1e-4 rel_to_max.
    const failures: string[] = [];
    for (const [name, got, ref] of [
      ['recon (decode of code_pix)', run.recon, 'recon_from_codes'],
      ['semanticFeatures', run.semanticFeatures, 'z_q_sem'],
      ['embedding', run.embedding, 'pooler_output'],
    ] as const) {
      const c = compareFloat(`browser ${name}`, got, await golden.get(ref));
      if (!(c.relToMax <= REL_TO_MAX)) failures.push(describe(c));
    }
    expect(failures).toEqual([]);
    expect(run.reconShape).toEqual([2, 3, 64, 64]);

    // The image path: PNG decoded by the browser + GPU preprocessing = the official pixel_values.
    const pv = compareFloat('browser pixel_values (PNG)', run.pixelValuesFromPng, await golden.get('pixel_values'));
    expect(pv.maxAbs).toBe(0);
    expect(run.pixelCodesFromPng, 'encodeImages(PNG) pixel codes').toEqual(run.pixelCodes);
    expect(run.semanticCodesFromPng, 'encodeImages(PNG) semantic codes').toEqual(run.semanticCodes);
    // 8-bit output vs recon_*.png (truncation): float noise may flip a value sitting on an integer.
    console.log(`8-bit recon vs recon_*.png: ${run.recon8.differing} of ${run.recon8.total} values differ, by at most ${run.recon8.maxDiff}`);
    expect(run.recon8.gpuVsCpu, "decode()'s 8-bit images (GPU) vs reconToRgb (CPU)").toBe(0);
    expect(run.recon8.maxDiff).toBeLessThanOrEqual(1);
    expect(run.recon8.differing).toBeLessThanOrEqual(run.recon8.total * 1e-3);

    // Only the tensors the encoder and decoder use were downloaded (the text tower was not).
    expect(run.download.networkBytes).toBe(firstLoadBytes);
    expect(firstLoadBytes).toBeLessThan(statSync(join(caseDir('tiny'), 'model.safetensors')).size);
  });

  it('loads the same model a second time without downloading it again', async () => {
    expect(firstLoadBytes).toBeGreaterThan(0);
    server.resetStats();
    const again = await inPage((url: string) => window.dualtokenTest.load(url), CASE_URL);
    const served = server.stats.get(WEIGHTS_PATH);
    console.log(`second load: ${Math.round(again.ms)} ms; server sent ${served?.bytes ?? 0} bytes of model.safetensors in ${served?.requests ?? 0} requests; page stats ${JSON.stringify(again.download)}`);
    // One 8-byte probe (size + version check); the header and every tensor from the Cache API.
    expect(served?.bytes ?? 0).toBeLessThanOrEqual(8);
    expect(served?.requests ?? 0).toBeLessThanOrEqual(1);
    expect(again.download.networkBytes).toBeLessThanOrEqual(8);
    expect(again.download.cacheBytes).toBeGreaterThanOrEqual(firstLoadBytes - 8);
    expect(again.download.cacheDisabled).toBeUndefined();
  });

  it('reads images from every input type to the same RGB (GPU and 2D-canvas paths)', async () => {
    const r = await inPage((url: string) => window.dualtokenTest.imageInputs(url), '/golden/tiny/input_0.png');
    console.log(`image inputs: ${JSON.stringify(r)}`);
    for (const [name, v] of Object.entries(r)) expect({ name, ...v }).toEqual({ name, width: 105, height: 97, differing: 0 });
  });

  it('creates pipelines asynchronously in the browser: a failing one rejects naming its kernel, nothing leaks to the device', async () => {
    const r = await inPage(() => window.dualtokenTest.asyncPipelineErrors());
    console.log(`async pipeline errors: ${JSON.stringify(r)}`);
    expect(r.pipeline).toMatch(/^kernel 'too_wide': pipeline creation failed/);
    expect(r.wgsl).toMatch(/^kernel 'bad_type': WGSL does not compile/);
    expect(r.good).toBe(true);
    expect(r.deviceOk).toBe('ok');
  });

  it('runs the model in a Web Worker (dualtoken-worker.js): golden codes, images in, pixels out', async () => {
    const r: WorkerRun = await inPage((url: string) => window.dualtokenTest.inWorker(url), CASE_URL);
    console.log(`worker: adapter ${r.adapter}; ms ${JSON.stringify(Object.fromEntries(Object.entries(r.ms).map(([k, v]) => [k, Math.round(v)])))}; ${r.progressCalls} progress messages`);
    const golden = await Golden.open('tiny');
    const codePix = Array.from((await golden.get('code_pix')).data);
    expect(r.imageSize).toBe(64);
    expect(r.progressCalls).toBeGreaterThan(0);
    expect(r.pixelCodes).toEqual(codePix);
    expect(r.semanticCodes).toEqual(Array.from((await golden.get('code_sem')).data));
    expect(r.fromBlobs, 'encodeImages(PNG Blobs) in the worker').toEqual(codePix);
    expect(r.fromBitmaps, 'encodeImages(ImageBitmaps, transferred)').toEqual(codePix);
    expect(r.fromBuffers, 'encodeImages(ArrayBuffers of the files, transferred)').toEqual(codePix);
    expect(r.bitmapDetached, 'an ImageBitmap sent to the worker is transferred').toBe(true);
    const failures: string[] = [];
    for (const [name, got, ref] of [
      ['worker recon', r.recon, 'recon_from_codes'],
      ['worker embedding', r.embedding, 'pooler_output'],
    ] as const) {
      const c = compareFloat(name, got, await golden.get(ref));
      if (!(c.relToMax <= REL_TO_MAX)) failures.push(describe(c));
    }
    expect(failures).toEqual([]);
    expect(r.reconShape).toEqual([2, 3, 64, 64]);
    expect(r.images8).toBe(2);
    expect(r.afterDispose).toMatch(/disposed/);
  });

  it('gives a JPEG (4:2:0 photo) the same codes in Chromium (page and worker) as in Node', async () => {
    const name = 'photo.jpg';
    const bytes = readFileSync(join(FIXTURES, 'jpeg', name));
    const r: JpegRun = await inPage((a: { url: string; bytes: number[]; name: string }) => window.dualtokenTest.jpeg(a.url, a.bytes, a.name), { url: CASE_URL, bytes: Array.from(bytes), name });
    const model = await loadDualToken(caseDir('tiny'));
    let node: { pixelCodes: number[]; semanticCodes: number[] };
    try {
      const rgb = decodeImage(new Uint8Array(bytes), name);
      expect([r.width, r.height]).toEqual([rgb.width, rgb.height]);
      const enc = await model.encodeImages([rgb]);
      node = { pixelCodes: Array.from(enc.pixelCodes), semanticCodes: Array.from(enc.semanticCodes) };
    } finally {
      model.dispose();
    }
    console.log(`${name} (${r.width}x${r.height}): ${node.pixelCodes.length} pixel codes, ${node.semanticCodes.length} semantic codes`);
    expect(r.page, 'page (imageToRgb + encodeImages) vs Node (decodeImage + encodeImages)').toEqual(node);
    expect(r.worker, 'worker encodeImages([File]) vs Node').toEqual(node);
  });

  // A measurement, run when asked: DUALTOKEN_BROWSER_TIMINGS=<rounds> (each round ~17 s).
  const timingRounds = Number(process.env.DUALTOKEN_BROWSER_TIMINGS ?? 0);
  it.runIf(timingRounds > 0)('times the first and second encode / decode: pipelines created sync, async, async + prepared at load (fresh browser each)', async () => {
    // A browser of its own per run: Chromium keeps compiled pipelines in its GPU process, so a
    // second run in the same browser would not compile. Timings are reported, not asserted.
    const modes = [
      { asyncPipelines: false, prepare: [] },
      { asyncPipelines: true, prepare: [] },
      { asyncPipelines: true, prepare: [2] },
    ];
    const golden = Array.from((await (await Golden.open('tiny')).get('code_pix')).data);
    const rows: string[] = [];
    for (let round = 0; round < timingRounds; round++) {
      for (const mode of modes) {
        const fresh = await launchChromium();
        try {
          const p = await fresh.newPage();
          const plog = collectPageLog(p);
          await p.goto(`${server.url}/test.html`);
          await p.waitForFunction(() => 'dualtokenTest' in window, undefined, { timeout: 30_000 });
          const r: FirstRuns = await p.evaluate((arg) => window.dualtokenTest.firstRuns(arg.url, arg.mode), { url: CASE_URL, mode }).catch((e: Error) => {
            throw new Error(`${e.message}\n${plog.join('\n')}`);
          });
          expect(r.pixelCodes).toEqual(golden);
          const ms = Object.fromEntries(Object.entries(r.ms).map(([k, v]) => [k, Math.round(v)]));
          rows.push(`${mode.asyncPipelines ? 'async' : 'sync '}${mode.prepare.length ? ` prepare [${mode.prepare}]` : '            '}: ${JSON.stringify(ms)}`);
        } finally {
          await fresh.close();
        }
      }
    }
    console.log(`first / second run, ms (B=2, tiny):\n${rows.join('\n')}`);
  });

  /** Opens the demo with these URL parameters, waits until it is done or failed, returns its state. */
  async function demoRun(params: string, shot?: string, busyShot?: string) {
    mkdirSync(ARTIFACTS, { recursive: true });
    const demo = await browser.newPage({ viewport: { width: 1200, height: 1000 }, acceptDownloads: true });
    const demoLog = collectPageLog(demo);
    await demo.goto(`${server.url}/index.html?${params}`);
    if (busyShot) {
      // Best effort, not asserted: the busy bar and the disabled controls while it loads / runs.
      await demo
        .waitForFunction(() => !document.getElementById('status')!.hidden, undefined, { timeout: 10_000, polling: 10 })
        .then(() => demo.screenshot({ path: join(ARTIFACTS, busyShot) }))
        .catch(() => {});
    }
    await demo.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), undefined, { timeout: 120_000 });
    const result = await demoState(demo);
    if (shot) await demo.screenshot({ path: join(ARTIFACTS, shot) });
    return { demo, demoLog, result };
  }

  /** The demo's state, and where its error sits: in the viewport, right under the control it belongs to. */
  function demoState(demo: Page) {
    return demo.evaluate(() => {
      const d: DemoState = window.dualtokenDemo;
      const err = document.getElementById(d.errorAt === 'image' ? 'imageError' : 'modelError')!;
      const box = err.getBoundingClientRect();
      return {
        state: document.body.dataset.state,
        error: d.error,
        errorAt: d.errorAt,
        errorShown: err.textContent ?? '',
        errorInView: box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight && box.left >= 0 && box.right <= window.innerWidth,
        // The control that failed: the model URL row, or the image drop zone (with the file input and samples).
        errorNextToControl: (() => {
          const control = (d.errorAt === 'image' ? document.getElementById('drop')! : document.getElementById('modelUrl')!.parentElement!).getBoundingClientRect();
          const gap = box.top - control.bottom;
          const section = err.closest('section')!;
          const sameSection = section.contains(d.errorAt === 'image' ? document.getElementById('drop')! : document.getElementById('modelUrl')!);
          const overlapX = Math.min(box.right, control.right) - Math.max(box.left, control.left);
          return { gap: Math.round(gap), sameSection, overlapX: Math.round(overlapX), controlInView: control.top >= 0 && control.bottom <= window.innerHeight };
        })(),
        loadText: document.getElementById('loadText')!.textContent ?? '',
        stale: d.stale === true,
        staleSections: document.querySelectorAll('section.result.stale').length,
        downloadsEnabled: Array.from(document.querySelectorAll<HTMLButtonElement>('#downloadCodes, #downloadSafetensors, #downloadEmbedding')).map((b) => !b.disabled),
        adapter: d.adapter,
        timings: d.timings,
        loadMs: d.loadMs,
        stages: d.stages,
        controlsDisabledWhileBusy: d.controlsDisabledWhileBusy,
        controlsEnabledAfter: Array.from(document.querySelectorAll<HTMLButtonElement>('#modelSection button, #imageSection button')).every((b) => !b.disabled),
        statusHidden: document.getElementById('status')!.hidden,
        pixelCodes: Array.from(d.pixelCodes ?? []),
        embedding: Array.from(d.embedding ?? []),
        embeddingStats: document.getElementById('embeddingStats')!.textContent ?? '',
        notice: document.querySelector('.notice')?.textContent ?? '',
        cells: document.querySelectorAll('#pixGrid div').length,
      };
    });
  }

  /** The error is in view and right under the control that failed (same section, within 24 px, overlapping it horizontally). */
  function expectErrorNextToControl(r: Awaited<ReturnType<typeof demoState>>) {
    expect(r.errorInView, `error box in the viewport: ${r.errorShown}`).toBe(true);
    expect(r.errorNextToControl.sameSection).toBe(true);
    expect(r.errorNextToControl.controlInView).toBe(true);
    expect(r.errorNextToControl.gap).toBeGreaterThanOrEqual(0);
    expect(r.errorNextToControl.gap).toBeLessThanOrEqual(24);
    expect(r.errorNextToControl.overlapX).toBeGreaterThan(100);
  }

  it('runs the demo page (engine in a worker): codes, embedding, JSON + safetensors downloads; a failing next run greys the results', async () => {
    const { demo, demoLog, result } = await demoRun(`model=${encodeURIComponent(DEMO_MODEL_URL)}&image=${encodeURIComponent('/golden/tiny/input_0.png')}&run=1`, 'demo.png', 'demo-busy.png');
    try {
      await demo.screenshot({ path: join(ARTIFACTS, 'demo-full.png'), fullPage: true });
      expect(result.error, demoLog.join('\n')).toBeUndefined();
      expect(result.state).toBe('done');
      console.log(`demo: adapter ${result.adapter}; load ${Math.round(result.loadMs ?? 0)} ms; ${result.timings.map((t) => `${t.stage} ${t.ms.toFixed(1)} ms`).join('; ')}`);
      // input_0.png through the demo (decode, GPU preprocessing, encode in the worker) gives the golden codes of image 0.
      const golden = await Golden.open('tiny');
      const codePix = Array.from((await golden.get('code_pix')).data);
      expect(result.pixelCodes).toEqual(codePix.slice(0, codePix.length / 2));
      expect(result.cells).toBe(16);
      // Busy state: the stages were shown and every control was disabled meanwhile; all back after.
      expect(result.stages.some((s) => s.startsWith('loading'))).toBe(true);
      expect(result.stages.some((s) => s.startsWith('encoding'))).toBe(true);
      expect(result.stages.some((s) => s.startsWith('decoding'))).toBe(true);
      expect(result.controlsDisabledWhileBusy).toBe(true);
      expect(result.controlsEnabledAfter).toBe(true);
      expect(result.statusHidden).toBe(true);
      // The embedding is shown, and it is the golden one.
      expect(result.embeddingStats).toMatch(/^64 dimensions · L2 norm/);
      const pooled = await golden.get('pooler_output'); // [2, 64]: image 0 is the first row
      const emb = compareFloat('demo embedding', result.embedding, { shape: [1, 64], data: pooled.data.subarray(0, 64) });
      expect(emb.relToMax).toBeLessThanOrEqual(REL_TO_MAX);
      expect(result.notice).toMatch(/random weights/);
      // Downloads: the codes in the CLI's JSON format, the embedding.
      const [codesFile] = await Promise.all([demo.waitForEvent('download'), demo.click('#downloadCodes')]);
      const codes = JSON.parse(readFileSync(await codesFile.path(), 'utf8')) as { shape: number[]; pixel: number[]; semantic_shape: number[]; semantic: number[] };
      expect(codesFile.suggestedFilename()).toBe('input_0.codes.json');
      expect(codes.shape).toEqual([1, 4, 4, codePix.length / 2 / 16]);
      expect(codes.pixel).toEqual(result.pixelCodes);
      expect(codes.semantic.length).toBe(codes.semantic_shape.reduce((a, b) => a * b, 1));
      const [embFile] = await Promise.all([demo.waitForEvent('download'), demo.click('#downloadEmbedding')]);
      const embJson = JSON.parse(readFileSync(await embFile.path(), 'utf8')) as { shape: number[]; embedding: number[] };
      expect(embJson.shape).toEqual([1, 64]);
      expect(embJson.embedding).toEqual(result.embedding);
      // The CLI's other format: safetensors with int32 code_pix / code_sem, f32 z_q_sem / pooler_output, the golden values of image 0.
      const [stFile] = await Promise.all([demo.waitForEvent('download'), demo.click('#downloadSafetensors')]);
      expect(stFile.suggestedFilename()).toBe('input_0.safetensors');
      const stBytes = new Uint8Array(readFileSync(await stFile.path()));
      const st = await openSafetensors(new MemoryReader(stBytes.buffer.slice(stBytes.byteOffset, stBytes.byteOffset + stBytes.byteLength), 'input_0.safetensors'));
      const half = <T extends { length: number; subarray(a: number, b: number): T }>(a: T) => a.subarray(0, a.length / 2);
      const codeSem = (await golden.get('code_sem')).data;
      const zqSem = await golden.get('z_q_sem');
      expect(st.info('code_pix')).toMatchObject({ dtype: 'I32', shape: codes.shape });
      expect(st.info('code_sem')).toMatchObject({ dtype: 'I32', shape: codes.semantic_shape });
      expect(st.info('z_q_sem')).toMatchObject({ dtype: 'F32', shape: [1, ...zqSem.shape.slice(1)] });
      expect(st.info('pooler_output')).toMatchObject({ dtype: 'F32', shape: [1, 64] });
      const i32 = async (n: string) => Array.from(new Int32Array((await st.read(n)).slice().buffer));
      const f32 = async (n: string) => new Float32Array((await st.read(n)).slice().buffer);
      expect(await i32('code_pix')).toEqual(codePix.slice(0, codePix.length / 2));
      expect(await i32('code_sem')).toEqual(Array.from(half(codeSem)));
      const zq = compareFloat('demo z_q_sem (safetensors)', await f32('z_q_sem'), { shape: [1, ...zqSem.shape.slice(1)], data: half(zqSem.data) });
      expect(zq.relToMax).toBeLessThanOrEqual(REL_TO_MAX);
      expect(Array.from(await f32('pooler_output'))).toEqual(result.embedding);

      // The finished run's lower half: code grids, the export buttons (enabled), the embedding plot.
      await demo.evaluate(() => document.getElementById('codesSection')!.scrollIntoView({ block: 'start' }));
      expect(await demo.evaluate(() => Array.from(document.querySelectorAll<HTMLButtonElement>('#downloadCodes, #downloadSafetensors, #downloadEmbedding')).map((b) => !b.disabled))).toEqual([true, true, true]);
      await demo.screenshot({ path: join(ARTIFACTS, 'demo-done.png') });

      // A new run that fails (a file that is no image): the previous image's results are greyed and
      // not downloadable, the error sits under the image controls, in view.
      await demo.setInputFiles('#file', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('this is not a PNG') });
      await demo.waitForFunction(() => document.body.dataset.state === 'error', undefined, { timeout: 60_000 });
      const failed = await demoState(demo);
      await demo.screenshot({ path: join(ARTIFACTS, 'demo-image-error.png') });
      expect(failed.errorAt).toBe('image');
      expect(failed.errorShown).toMatch(/notes\.png/);
      expectErrorNextToControl(failed);
      expect(failed.stale).toBe(true);
      expect(failed.staleSections).toBe(4);
      expect(failed.downloadsEnabled).toEqual([false, false, false]);
      expect(failed.pixelCodes).toEqual([]);
      expect(failed.controlsEnabledAfter).toBe(true);

      // Then a model that fails to load: the error under the model field; the load line says what failed.
      await demo.fill('#modelUrl', '/models/no-such-model/');
      await demo.click('#load');
      await demo.waitForFunction(() => document.body.dataset.state === 'error' && document.getElementById('modelError')!.textContent !== '', undefined, { timeout: 60_000 });
      const noModel = await demoState(demo);
      expect(noModel.errorAt).toBe('model');
      expect(noModel.errorShown).toMatch(/no-such-model/);
      expectErrorNextToControl(noModel);
      expect(noModel.loadText).toBe('failed to load /models/no-such-model/ (see below)');
      expect(noModel.stale).toBe(true);
      expect(noModel.statusHidden).toBe(true);
    } finally {
      await demo.close();
    }
  });

  it('scores labels in the demo page: the text tower loads at the first label only, probabilities as in Node', async () => {
    server.resetStats();
    const { demo, demoLog, result } = await demoRun(`model=${encodeURIComponent(DEMO_MODEL_URL)}&image=${encodeURIComponent('/golden/tiny/input_0.png')}&run=1`);
    try {
      expect(result.error, demoLog.join('\n')).toBeUndefined();
      // Image-only use: no tokenizer, and the weights' bytes are those of the encoder and decoder.
      const weightsPath = `${DEMO_MODEL_URL}model.safetensors`;
      const imageOnlyBytes = server.stats.get(weightsPath)?.bytes ?? 0;
      expect(server.stats.has(`${DEMO_MODEL_URL}tokenizer.json`)).toBe(false);
      await demo.waitForTimeout(500);
      expect(await demo.evaluate(() => window.dualtokenDemo.labelsState)).toBe('idle');
      expect(server.stats.get(weightsPath)?.bytes ?? 0).toBe(imageOnlyBytes);

      await demo.fill('#labels', 'cat\ndog');
      await demo.waitForFunction(() => ['done', 'error'].includes(window.dualtokenDemo.labelsState), undefined, { timeout: 120_000 });
      const r = await demo.evaluate(() => {
        const s = window.dualtokenDemo;
        return {
          labelsState: s.labelsState,
          labelsError: s.labelsError,
          labels: s.labels,
          prompts: s.prompts,
          probs: s.probs ? Array.from(s.probs) : undefined,
          textLoad: s.textLoad,
          bars: Array.from(document.querySelectorAll('#labelBars .p')).map((e) => e.textContent),
          progress: document.getElementById('textText')!.textContent,
        };
      });
      expect(r.labelsError, demoLog.join('\n')).toBeUndefined();
      expect(r.labelsState).toBe('done');
      expect(r.labels).toEqual(['cat', 'dog']);
      expect(r.prompts).toEqual(['a photo of cat.', 'a photo of dog.']);
      expect(r.bars).toHaveLength(2);
      // The text tower came through the range reader: the tokenizer and more of the weights file.
      expect(server.stats.get(`${DEMO_MODEL_URL}tokenizer.json`)?.requests).toBe(1);
      const textBytes = (server.stats.get(weightsPath)?.bytes ?? 0) - imageOnlyBytes;
      expect(textBytes).toBeGreaterThan(0);
      expect(r.textLoad!.download.networkBytes + r.textLoad!.download.cacheBytes).toBeGreaterThan(0);
      console.log(`demo labels: probs ${JSON.stringify(r.probs)}; text tower ${Math.round(r.textLoad!.ms)} ms, ${textBytes} bytes served (${r.textLoad!.download.requests} requests); ${r.progress}`);

      // Node: the same image and prompts through loadDualToken + classify.
      const model = await loadDualToken(caseDir('tiny'));
      let nodeProbs: number[];
      try {
        model.configureText({ tokenizer: loadTokenizerFile(join(FIXTURES, 'tokenizer', 'tiny-tokenizer.json'), model.config.text!) });
        const rgb = decodeImage(new Uint8Array(readFileSync(join(caseDir('tiny'), 'input_0.png'))), 'input_0.png');
        const c = await model.classify([rgb], r.prompts!);
        nodeProbs = Array.from(c.probs);
      } finally {
        model.dispose();
      }
      expect(r.probs).toHaveLength(2);
      for (let i = 0; i < 2; i++) expect(Math.abs(r.probs![i] - nodeProbs[i]), `label ${i}: page ${r.probs![i]} vs Node ${nodeProbs[i]}`).toBeLessThanOrEqual(1e-5);

      await demo.evaluate(() => document.getElementById('labelsSection')!.scrollIntoView({ block: 'center' }));
      mkdirSync(ARTIFACTS, { recursive: true });
      await demo.screenshot({ path: join(ARTIFACTS, 'demo-labels.png') });
    } finally {
      await demo.close();
    }
  });

  it('shows a failing load next to the model field, and a failing image next to the image controls, in view', async () => {
    const bad = await demoRun(`model=${encodeURIComponent('/models/no-such-model/')}&image=${encodeURIComponent('/golden/tiny/input_0.png')}&run=1`, 'demo-model-error.png');
    try {
      expect(bad.result.state).toBe('error');
      expect(bad.result.errorAt).toBe('model');
      expect(bad.result.errorShown).toMatch(/no-such-model/);
      expectErrorNextToControl(bad.result);
      expect(bad.result.loadText, 'the load line says what failed').toMatch(/^failed to load \/models\/no-such-model\//);
      expect(bad.result.loadText).not.toMatch(/opening/);
      expect(bad.result.statusHidden).toBe(true);
      expect(bad.result.controlsEnabledAfter).toBe(true);
    } finally {
      await bad.demo.close();
    }
    const notImage = await demoRun(`model=${encodeURIComponent(DEMO_MODEL_URL)}&image=${encodeURIComponent('/golden/tiny/config.json')}&run=1`);
    try {
      expect(notImage.result.state).toBe('error');
      expect(notImage.result.errorAt).toBe('image');
      expect(notImage.result.errorShown).toMatch(/config\.json/);
      expectErrorNextToControl(notImage.result);
      expect(notImage.result.controlsEnabledAfter).toBe(true);
      console.log(`demo errors: model: ${bad.result.errorShown}; image: ${notImage.result.errorShown}`);
    } finally {
      await notImage.demo.close();
    }
  });

  it('names CORS as the likely cause when a model on another origin cannot be fetched', async () => {
    // The golden model served from a second origin (another port) that sends no CORS headers:
    // Chromium refuses the responses ("Failed to fetch").
    const dir = caseDir('tiny');
    const other: Server = createServer((req, res) => {
      const name = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
      try {
        if (!/^[\w.-]+$/.test(name)) throw new Error('no');
        const body = readFileSync(join(dir, name));
        res.writeHead(200, { 'Content-Type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream', 'Content-Length': body.length });
        res.end(body);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const modelUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}/`;
    try {
      const r = await demoRun(`model=${encodeURIComponent(modelUrl)}&run=1`, 'demo-cors-error.png');
      try {
        expect(r.result.state).toBe('error');
        expect(r.result.errorAt).toBe('model');
        expect(r.result.errorShown).toMatch(/Failed to fetch/);
        expect(r.result.errorShown).toMatch(/no CORS headers for this page's origin/);
        expect(r.result.loadText).toBe(`failed to load ${modelUrl} (see below)`);
        expectErrorNextToControl(r.result);
        console.log(`CORS error: ${r.result.errorShown}`);
      } finally {
        await r.demo.close();
      }
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });
});
