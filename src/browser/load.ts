// DualToken in the browser: a model by URL on the page's WebGPU device.
import type { Gpu } from '../core/gpu.js';
import { useAsyncPipelines, type ShaderSources } from '../core/kernels.js';
import { DualToken, type DualTokenOptions } from '../model/dualtoken.js';
import { requestBrowserGpu, type BrowserGpuOptions } from './gpu.js';
import type { HttpReaderStats } from './http-reader.js';
import { openModelUrl, sumStats, type ModelUrlOptions } from './model-url.js';
import { SHADERS } from './shaders.js';

export interface UrlLoadOptions extends DualTokenOptions, ModelUrlOptions, BrowserGpuOptions {
  /** A device to use (default: one requested from navigator.gpu). */
  gpu?: Gpu;
  /** WGSL kernels (default: the ones bundled in this build). */
  shaders?: ShaderSources;
  /** Called once the weights are on the GPU: what was downloaded and what came from the cache. */
  onDownloadStats?: (stats: HttpReaderStats) => void;
  /**
   * Batch sizes whose encode and decode programs are recorded during the load, with every
   * pipeline of both compiling in parallel, so that the first encode / decode at those sizes
   * does not wait for the compiler. Default none (each program is recorded at its first call).
   */
  prepare?: number[];
}

/**
 * Loads a DualToken model from a URL: a folder with config.json, optional siglip_config.json and
 * model.safetensors (or a sharded set / .pt checkpoint), or the weights file's URL itself.
 * Only the tensors the encoder and decoder use are downloaded, one Range request each, and they
 * are kept in the Cache API so a second load does not download them again.
 */
export async function loadDualTokenFromUrl(url: string, opts: UrlLoadOptions = {}): Promise<DualToken> {
  const files = await openModelUrl(url, opts);
  let own: Gpu | undefined;
  try {
    const gpu = opts.gpu ?? (own = await requestBrowserGpu(opts));
    useAsyncPipelines(gpu, opts.asyncPipelines !== false); // createComputePipelineAsync unless asked not to
    // Neighbouring tensors of the encoder and decoder are fetched together (far fewer requests).
    const unused = new Set(DualToken.unusedTensors(files.source, files.config));
    files.plan(files.source.names().filter((n) => !unused.has(n)));
    const model = await DualToken.create(gpu, opts.shaders ?? SHADERS, files.config, files.source, opts);
    opts.onDownloadStats?.(sumStats(files.readers));
    try {
      await prepareModel(model, opts.prepare ?? []);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  } catch (e) {
    own?.destroy(); // a device requested here is not left behind by a failed load
    throw e;
  } finally {
    await files.source.close?.();
  }
}

/**
 * Records the encode and decode programs of these batch sizes and compiles their pipelines, all
 * started at once (with asynchronous pipelines they compile in parallel).
 */
export async function prepareModel(model: DualToken, batches: number[]): Promise<void> {
  const programs = batches.flatMap((b) => [model.encoderProgram(b), model.decoderProgram(b)]);
  await Promise.all(programs.map((p) => p.finalize()));
}
