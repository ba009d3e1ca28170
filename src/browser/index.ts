// The browser entry of the engine (bundled by scripts/build-web.mjs into dist/web/dualtoken.js):
// the same DualToken as in Node, on the page's WebGPU device, with weights fetched by URL
// (Range requests + Cache API) and the WGSL kernels bundled.
//
//   import { loadDualTokenFromUrl, imageToRgb, preprocessImages, drawRecon } from './dualtoken.js';
//   const model = await loadDualTokenFromUrl('/models/tiny/', { onProgress: (p) => ... });
//   const { pixelValues } = await preprocessImages(model.gpu, [await imageToRgb(file, { gpu: model.gpu })], model.imageSize);
//   const codes = await model.encode(pixelValues, 1);
//   const { recon, shape } = await model.decode(codes.pixelCodes, 1);
//   drawRecon(canvas, recon, shape);
export { DualToken, type DecodeResult, type DualTokenOptions, type EncodeResult, type GpuMemory } from '../model/dualtoken.js';
export { Gpu, DeviceLostError, type AdapterDescription } from '../core/gpu.js';
export { parseConfig, gridSize, type DualTokenConfig } from '../core/config.js';
export { KernelLibrary, useAsyncPipelines, type KernelLibraryOptions, type ShaderSources } from '../core/kernels.js';
export type { LoadProgress } from '../core/weights.js';
export type { ByteReader, TensorInfo, TensorSource } from '../core/tensor-source.js';
export { MemoryReader } from '../core/bytes.js';
export { openSafetensors } from '../core/safetensors.js';
export { toFloat32, toInt32 } from '../core/dtype.js';
export { SHADERS } from './shaders.js';
export { requestBrowserGpu, type BrowserGpuOptions } from './gpu.js';
export { HttpReader, DEFAULT_CACHE_NAME, type HttpReaderOptions, type HttpReaderStats } from './http-reader.js';
export { openModelUrl, sumStats, type ModelUrlOptions, type UrlModelFiles } from './model-url.js';
export { loadDualTokenFromUrl, prepareModel, type UrlLoadOptions } from './load.js';
export {
  decodeImage,
  drawRecon,
  drawRgb,
  imageToRgb,
  preprocessImages,
  reconToRgb,
  rgbToImageData,
  rgbToPixelValues,
  type ImageInput,
  type ImageReadOptions,
  type Preprocessed,
  type RgbImage,
} from './image.js';
