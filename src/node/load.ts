// Loading a model from disk: a folder (config.json, optional siglip_config.json, and
// model.safetensors, a sharded model.safetensors.index.json set, or a PyTorch .pt checkpoint),
// or a weights file with config.json beside it.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseConfig, type DualTokenConfig } from '../core/config.js';
import type { Gpu } from '../core/gpu.js';
import type { ShaderSources } from '../core/kernels.js';
import type { TensorSource } from '../core/tensor-source.js';
import { DualToken, type DualTokenOptions } from '../model/dualtoken.js';
import { openWeightsFile, shardFiles } from './files.js';
import { readJson } from './io.js';
import { findTokenizerFile, loadTokenizerFile } from './tokenizer.js';
import { fileTuneStorage } from './autotune-cache.js';
import { compileNotice } from './compile-notice.js';
import { createNodeGpu } from './gpu.js';
import { loadShaders } from './shaders.js';

export interface ModelFiles {
  config: DualTokenConfig;
  source: TensorSource;
  /** What was opened, for messages. */
  weightsPath: string;
}

function findWeights(dir: string): string {
  for (const name of ['model.safetensors', 'model.safetensors.index.json']) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  const pt = readdirSync(dir).filter((f) => /\.(pt|pth|ckpt)$/.test(f));
  if (pt.length === 1) return join(dir, pt[0]);
  if (pt.length > 1) throw new Error(`${dir}: several checkpoints (${pt.join(', ')}); name one with --model`);
  throw new Error(`${dir}: no weights found (model.safetensors, model.safetensors.index.json or a .pt checkpoint)`);
}

export interface ModelLocation {
  config: DualTokenConfig;
  /** The weights file: .safetensors, .index.json or .pt. */
  weightsPath: string;
  /** Every file the model is read from (configs, weights, shards), for checks against outputs. */
  files: string[];
}

/** Reads the config of a model folder or weights file (config.json beside it) and finds its weights, without opening them. */
export function locateModel(path: string): ModelLocation {
  if (!existsSync(path)) throw new Error(`${path}: no such file or folder`);
  const isDir = statSync(path).isDirectory();
  const dir = isDir ? path : dirname(path);
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new Error(`${dir}: no config.json (the official DualToken config) beside the weights`);
  const raw = readJson(configPath);
  const siglipPath = join(dir, 'siglip_config.json');
  const hasSiglip = existsSync(siglipPath);
  const config = parseConfig(raw, hasSiglip ? readJson(siglipPath) : undefined, configPath);
  const weightsPath = isDir ? findWeights(dir) : path;
  const shards = weightsPath.endsWith('.index.json') ? shardFiles(weightsPath) : [];
  return { config, weightsPath, files: [configPath, ...(hasSiglip ? [siglipPath] : []), weightsPath, ...shards] };
}

/** Opens config + weights from a model folder or a weights file (config.json beside it). */
export async function openModelFiles(path: string): Promise<ModelFiles> {
  const { config, weightsPath } = locateModel(path);
  return { config, source: await openWeightsFile(weightsPath), weightsPath };
}

export interface LoadOptions extends DualTokenOptions {
  gpu?: Gpu;
  /** See createNodeGpu: 'auto', 'cpu' or a Vulkan ICD path. */
  adapter?: string;
  /** See createNodeGpu. */
  silenceAdapterWarnings?: boolean;
  /** The WGSL kernels; default the package's shaders/ folder (loadShaders). */
  shaders?: ShaderSources;
}

/** DualToken.load for Node: a model folder or weights file -> a ready model on a Dawn device. */
export async function loadDualToken(path: string, opts: LoadOptions = {}): Promise<DualToken> {
  const files = await openModelFiles(path);
  const gpu = opts.gpu ?? (await createNodeGpu({ adapter: opts.adapter, silenceAdapterWarnings: opts.silenceAdapterWarnings }));
  try {
    // With a log: a notice before a first run that compiles kernels new to this machine.
    const onNewProgram = opts.log && compileNotice(gpu, opts.log);
    // The text tower's weights are read lazily, at the first text call: it reopens the file.
    // so is a tokenizer.json beside the weights, for text given as strings.
    const textSource = () => openWeightsFile(files.weightsPath);
    const tokenizerPath = findTokenizerFile(path);
    const text = files.config.text;
    const tokenizer = tokenizerPath && text ? () => loadTokenizerFile(tokenizerPath, text) : undefined;
    return await DualToken.create(gpu, opts.shaders ?? loadShaders(), files.config, files.source, { tuneStorage: fileTuneStorage(), onNewProgram, textSource, tokenizer, ...opts });
  } finally {
    await files.source.close?.();
  }
}

