// The Node entry: the core plus Dawn device discovery, files on disk and image codecs.
export * from '../core/index.js';
export { createNodeGpu, CPU_ICDS, WEBGPU_PACKAGE, type NodeGpuOptions } from './gpu.js';
export { loadShaders, shaderDirs, SHADER_DIRS } from './shaders.js';
export { loadDualToken, openModelFiles, type LoadOptions } from './load.js';
export { openWeightsFile, openSafetensorsFile } from './files.js';
export { decodeImage, encodePng } from './decode.js';
export { findTokenizerFile, loadTokenizerFile } from './tokenizer.js';
export { convertWeights } from './convert.js';
