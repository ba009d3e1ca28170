// The engine in a real browser: headless Chromium (Debian's, via playwright-core) with WebGPU,
// the web bundle (dist/web/, built here), the static server on a free loopback port. The test
// page loads the golden case `tiny` by URL (Range requests + Cache API), runs encode + decode in
// the page and hands the results back for comparison with the golden reference. No WebGPU in the
// browser is a failure, not a skip.
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe as suite, expect, it } from 'vitest';
import type { DemoState } from '../web/demo.js';
import type { GoldenRun } from '../web/test.js';
import { REPO, buildWeb, collectPageLog, launchChromium, startWebServer, type RunningServer } from './helpers/browser.js';
import { Golden, REL_TO_MAX, caseDir, compareFloat, describe } from './helpers/golden.js';

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

  it('runs the demo page and saves a screenshot (test/artifacts/demo.png)', async () => {
    const demo = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
    const demoLog = collectPageLog(demo);
    try {
      await demo.goto(`${server.url}/index.html?model=${encodeURIComponent(DEMO_MODEL_URL)}&image=${encodeURIComponent('/golden/tiny/input_0.png')}&run=1`);
      await demo.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), undefined, { timeout: 60_000 });
      const result = await demo.evaluate(() => {
        const d: DemoState = window.dualtokenDemo;
        return {
          state: document.body.dataset.state,
          error: d.error,
          adapter: d.adapter,
          timings: d.timings,
          loadMs: d.loadMs,
          pixelCodes: Array.from(d.pixelCodes ?? []),
          cells: document.querySelectorAll('#pixGrid div').length,
        };
      });
      mkdirSync(ARTIFACTS, { recursive: true });
      await demo.screenshot({ path: join(ARTIFACTS, 'demo.png'), fullPage: true });
      expect(result.error, demoLog.join('\n')).toBeUndefined();
      expect(result.state).toBe('done');
      console.log(`demo: adapter ${result.adapter}; load ${Math.round(result.loadMs ?? 0)} ms; ${result.timings.map((t) => `${t.stage} ${t.ms.toFixed(1)} ms`).join('; ')}`);
      // input_0.png through the demo (browser decode, GPU preprocessing, encode) gives the golden codes of image 0.
      const codePix = Array.from((await (await Golden.open('tiny')).get('code_pix')).data);
      expect(result.pixelCodes).toEqual(codePix.slice(0, codePix.length / 2));
      expect(result.cells).toBe(16);
    } finally {
      await demo.close();
    }
  });
});
