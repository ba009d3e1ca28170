// The browser-safe core: everything needed to run DualToken on a GPUDevice you already have.
export { parseConfig, gridSize, BACKBONE_PRESETS, type DualTokenConfig } from './config.js';
export { Gpu, DeviceLostError, type AdapterDescription } from './gpu.js';
export { KernelLibrary, useAsyncPipelines, type ShaderSources } from './kernels.js';
export { Program, NonFiniteError, type DispatchTiming, type Cost } from './program.js';
export { summarize, formatTable, type KernelRow, type Peak } from './profile.js';
export { Tensor } from './tensor.js';
export { MemoryReader } from './bytes.js';
export { openSafetensors, encodeSafetensors } from './safetensors.js';
export { openPyTorchCheckpoint } from './pytorch.js';
export { MergedSource } from './sharded.js';
export type { TensorSource, TensorInfo, ByteReader, DType } from './tensor-source.js';
export type { RgbImage } from './image.js';
export { DualToken, type EncodeResult, type DecodeResult, type DualTokenOptions, type GpuMemory } from '../model/dualtoken.js';
export { VARIANTS, parseKernelChoice, type KernelChoice, type Precision } from '../ops/choice.js';
export { TextTower, type TextEncodeResult, type ClassifyResult, type TextInput } from '../model/text-model.js';
export { HfTextTokenizer, type TextTokenizer, type TokenizerOptions } from './tokenizer.js';
export type { TextConfig } from './config.js';
