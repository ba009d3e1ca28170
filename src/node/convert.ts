// `dualtoken convert`: any weights the loader opens (a PyTorch .pt training checkpoint, a
// .safetensors file, a sharded *.index.json set) -> ONE safetensors file, written streaming.
//
// The header is computed from the tensor infos alone (names sorted, dtypes after conversion,
// offsets), written first, then each tensor is read, converted (in 1 Mi-element chunks through a
// fixed 4 MiB scratch) and appended in turn. Only one tensor is held at a time, so host memory
// follows the largest tensor, not the file (about 2x the largest tensor plus Node's own, as the
// previous tensor's buffer may not be collected yet; measured: see bench/README.md).
// The output is written to a temporary file beside OUT (src/node/output.ts) and renamed to OUT only
// when everything succeeded, so a failed conversion leaves neither a partial OUT nor the temporary
// file behind, and an existing OUT untouched.
//
// What is kept: every tensor of the state_dict (the optimizer of a training checkpoint is never
// part of it), including the quantizers' EMA buffers (`*.cluster_size_ema`, `*.embed_ema`) — the
// official loader uses strict=True, so a full conversion stays loadable by the official code.
// Options drop what this engine does not need:
// - dropTextTower: `siglip_model.text_model.*` (the SigLIP text tower, most of the real
//   checkpoint's size; its 1.18 GB token embedding is over many adapters' storage binding limit).
//   `siglip_model.logit_scale` / `logit_bias` are kept: two scalars, needed with any text
//   embeddings for zero-shot scores.
// - dropEma: the EMA buffers, which only training updates.
// Either option makes the file a partial state_dict (the official strict loader refuses it).
//
// Limitation: the PyTorch reader leaves out tensors of dtypes it does not support (float64,
// uint8, bool, int16, int8); they cannot be converted and are not reported here.
//
// The input is opened like load.ts's openWeightsFile does (same dispatch on the file name), but
// without importing load.ts, which pulls in the model and the Dawn GPU binding: converting files
// needs neither.
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { convertFloatElements, isFloatDType } from '../core/half.js';
import { DTYPE_BYTES, numel, type DType, type TensorInfo, type TensorSource } from '../core/tensor-source.js';
import { openWeightsFile, shardFiles } from './files.js';
import { cannotWrite, checkNotInputs, checkWritableFile, tempPathFor } from './output.js';
import { Progress } from './progress.js';

export type ConvertDType = 'f32' | 'f16' | 'bf16';

export interface ConvertOptions {
  /** Target dtype of every float tensor (default: keep each tensor's dtype). Integer tensors are kept as they are. */
  dtype?: ConvertDType;
  /** Skip `siglip_model.text_model.*` (logit_scale / logit_bias are kept). */
  dropTextTower?: boolean;
  /** Skip the quantizers' EMA buffers (`*.cluster_size_ema`, `*.embed_ema`), used only in training. */
  dropEma?: boolean;
  /**
   * Called once before the first tensor (done = 0) and after each tensor: tensors written, tensors
   * to write, data bytes written so far, data bytes to write in all.
   */
  onProgress?: (done: number, total: number, bytes: number, totalBytes: number) => void;
}

export interface ConvertSummary {
  /** Tensors written. */
  tensors: number;
  /** Bytes of tensor data read from the input. */
  bytesIn: number;
  /** Size of the output file (header included). */
  bytesOut: number;
  /** Names of the input's tensors that were left out (sorted). */
  skipped: string[];
}

const DTYPE_OF: Record<ConvertDType, DType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };
const TEXT_TOWER_PREFIX = 'siglip_model.text_model.';
const EMA_BUFFER = /\.(cluster_size_ema|embed_ema)$/;
/** Elements converted per write: 1 Mi elements, at most 4 MiB of scratch. */
const CHUNK_ELEMENTS = 1 << 20;

export function isTextTowerTensor(name: string): boolean {
  return name.startsWith(TEXT_TOWER_PREFIX);
}

export function isEmaBuffer(name: string): boolean {
  return EMA_BUFFER.test(name);
}

interface Planned {
  name: string;
  from: TensorInfo;
  dtype: DType;
  begin: number;
  byteLength: number;
}

interface Plan {
  header: Uint8Array;
  tensors: Planned[];
  dataBytes: number;
  skipped: string[];
}

function plan(source: TensorSource, opts: ConvertOptions): Plan {
  if (opts.dtype !== undefined && !Object.hasOwn(DTYPE_OF, opts.dtype)) {
    throw new Error(`unknown dtype '${opts.dtype}' (use f32, f16 or bf16)`);
  }
  const target = opts.dtype === undefined ? undefined : DTYPE_OF[opts.dtype];
  const names = source.names().sort();
  const skipped: string[] = [];
  const tensors: Planned[] = [];
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const name of names) {
    if ((opts.dropTextTower && isTextTowerTensor(name)) || (opts.dropEma && isEmaBuffer(name))) {
      skipped.push(name);
      continue;
    }
    const from = source.info(name);
    if (!from) throw new Error(`${source.label}: missing tensor '${name}'`);
    const dtype = target && isFloatDType(from.dtype) ? target : from.dtype;
    const byteLength = numel(from.shape) * DTYPE_BYTES[dtype];
    tensors.push({ name, from, dtype, begin: offset, byteLength });
    header[name] = { dtype, shape: from.shape, data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }
  // The JSON, padded with spaces to a multiple of 8 so the data section starts aligned.
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  return { header: bytes, tensors, dataBytes: offset, skipped };
}

async function writeAll(handle: FileHandle, data: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < data.byteLength) {
    const { bytesWritten } = await handle.write(data, done, data.byteLength - done, position + done);
    if (bytesWritten <= 0) throw new Error(`${path}: write failed at byte ${position + done}`);
    done += bytesWritten;
  }
}

/** Converts an open TensorSource into one safetensors file at `outPath` (see convertWeights). */
export async function convertSource(source: TensorSource, outPath: string, opts: ConvertOptions = {}): Promise<ConvertSummary> {
  const p = plan(source, opts);
  checkWritableFile(outPath);
  const tmpPath = tempPathFor(outPath);
  let handle: FileHandle | undefined;
  try {
    try {
      handle = await open(tmpPath, 'wx');
    } catch (e) {
      throw cannotWrite(outPath, e);
    }
    await writeAll(handle, p.header, 0, tmpPath);
    const dataStart = p.header.byteLength;
    const scratch = new Uint8Array(CHUNK_ELEMENTS * 4);
    let bytesIn = 0;
    let written = 0;
    opts.onProgress?.(0, p.tensors.length, 0, p.dataBytes);
    for (const [i, t] of p.tensors.entries()) {
      let data: Uint8Array | undefined = await source.read(t.name);
      if (data.byteLength !== t.from.byteLength) {
        throw new Error(`${source.label}: tensor '${t.name}' read ${data.byteLength} bytes, its ${t.from.dtype} x [${t.from.shape}] needs ${t.from.byteLength}`);
      }
      bytesIn += data.byteLength;
      const at = dataStart + t.begin;
      if (t.dtype === t.from.dtype) {
        await writeAll(handle, data, at, tmpPath);
      } else {
        const n = numel(t.from.shape);
        const outSize = DTYPE_BYTES[t.dtype];
        for (let start = 0; start < n; start += CHUNK_ELEMENTS) {
          const count = Math.min(CHUNK_ELEMENTS, n - start);
          const bytes = convertFloatElements(data, t.from.dtype, t.dtype, start, count, scratch);
          await writeAll(handle, scratch.subarray(0, bytes), at + start * outSize, tmpPath);
        }
      }
      data = undefined; // let the tensor go before the next one is read
      written += t.byteLength;
      opts.onProgress?.(i + 1, p.tensors.length, written, p.dataBytes);
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmpPath, outPath);
    return { tensors: p.tensors.length, bytesIn, bytesOut: dataStart + p.dataBytes, skipped: p.skipped };
  } catch (e) {
    await handle?.close().catch(() => undefined);
    await rm(tmpPath, { force: true }).catch(() => undefined);
    throw (e as NodeJS.ErrnoException).code ? cannotWrite(outPath, e) : e;
  }
}

/**
 * Converts weights (a PyTorch .pt checkpoint, a .safetensors file or a sharded
 * `*.safetensors.index.json` set) into ONE safetensors file, streaming (see the file comment).
 * Errors name the file they come from; on failure nothing is left at `outPath` (an existing file
 * there is kept as it was).
 */
export async function convertWeights(inPath: string, outPath: string, opts: ConvertOptions = {}): Promise<ConvertSummary> {
  const source = await openWeightsFile(inPath);
  try {
    return await convertSource(source, outPath, opts);
  } finally {
    await source.close?.();
  }
}

// ---------------------------------------------------------------------------------------------
// The CLI command.

export const CONVERT_USAGE = 'dualtoken convert IN.pt|IN.safetensors|IN.index.json --out OUT.safetensors [--dtype f32|f16|bf16] [--drop-text-tower] [--drop-ema] [--quiet]';

function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

/**
 * `dualtoken convert IN --out OUT.safetensors [--dtype f32|f16|bf16] [--drop-text-tower] [--drop-ema] [--quiet]`.
 * Value flags it reads: out, dtype. Switches: drop-text-tower, drop-ema, quiet.
 */
export async function convertCommand(positionals: string[], flags: Map<string, string>, switches: Set<string>): Promise<void> {
  if (positionals.length !== 1) throw new Error(`'convert' takes one input (a .pt checkpoint, .safetensors file or .index.json); usage: ${CONVERT_USAGE}`);
  const inPath = positionals[0];
  const out = flags.get('out');
  if (!out) throw new Error(`'convert' needs --out OUT.safetensors`);
  if (!out.endsWith('.safetensors')) throw new Error(`${out}: the output must be a .safetensors file`);
  checkNotInputs([out], [inPath, ...(inPath.endsWith('.index.json') ? shardFiles(inPath) : [])]);
  const dtype = flags.get('dtype');
  if (dtype !== undefined && !Object.hasOwn(DTYPE_OF, dtype)) throw new Error(`--dtype ${dtype}: use f32, f16 or bf16`);
  const quiet = switches.has('quiet');
  const progress = new Progress('convert', 0, quiet, process.stderr, 'B');
  const summary = await convertWeights(inPath, out, {
    dtype: dtype as ConvertDType | undefined,
    dropTextTower: switches.has('drop-text-tower'),
    dropEma: switches.has('drop-ema'),
    onProgress: (done, total, bytes, totalBytes) => progress.update(bytes, `${done}/${total} tensors`, totalBytes),
  });
  if (!quiet) {
    const skipped = summary.skipped.length ? `, skipped ${summary.skipped.length}` : '';
    process.stderr.write(`converted ${inPath} -> ${out}: ${summary.tensors} tensors, ${formatBytes(summary.bytesIn)} read, ${formatBytes(summary.bytesOut)} written${skipped}\n`);
  }
}
