// The browser's WebGPU device: navigator.gpu -> adapter -> Gpu.fromAdapter (the adapter's own
// limits and every wanted feature it has, exactly as in Node).
import { Gpu } from '../core/gpu.js';
import { useAsyncPipelines } from '../core/kernels.js';

export interface BrowserGpuOptions {
  powerPreference?: GPUPowerPreference;
  /** Accept a fallback (software) adapter when no other exists. Default true. */
  allowFallback?: boolean;
  /**
   * Kernel pipelines on this device are created with createComputePipelineAsync (compiled in
   * parallel, off the page's thread). Default true.
   */
  asyncPipelines?: boolean;
}

/** Throws an Error that says why when WebGPU is missing (no navigator.gpu, no adapter). */
export async function requestBrowserGpu(opts: BrowserGpuOptions = {}): Promise<Gpu> {
  const gpu = typeof navigator !== 'undefined' ? (navigator as Navigator & { gpu?: GPU }).gpu : undefined;
  if (!gpu) {
    const secure = typeof isSecureContext === 'undefined' || isSecureContext;
    throw new Error(
      secure
        ? 'WebGPU is not available in this browser (navigator.gpu is undefined): use a browser with WebGPU enabled (Chrome/Edge 113+, Firefox 141+, Safari 26+)'
        : 'WebGPU needs a secure context: open this page over https or from http://localhost / http://127.0.0.1',
    );
  }
  let adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference });
  if (!adapter && opts.allowFallback !== false) adapter = await gpu.requestAdapter({ forceFallbackAdapter: true });
  if (!adapter) throw new Error('WebGPU is present but no adapter is available (GPU blocklisted or disabled? see chrome://gpu)');
  const device = await Gpu.fromAdapter(adapter);
  useAsyncPipelines(device, opts.asyncPipelines !== false);
  return device;
}
