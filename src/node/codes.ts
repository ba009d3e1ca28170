// Codes files: what `encode` writes (safetensors, or JSON {shape, pixel, semantic_shape, semantic,
// files}) and what `decode` reads back. Pixel codes are checked against the model's config before
// the model is loaded: shape [B, h, w, D] of positive integers, every value an integer code of the
// codebook; each refusal is one line naming the file and the offending index or value.
import { MemoryReader } from '../core/bytes.js';
import type { DualTokenConfig, QuantizerConfig } from '../core/config.js';
import { toInt32 } from '../core/dtype.js';
import { encodeSafetensors, openSafetensors } from '../core/safetensors.js';
import type { EncodeResult } from '../model/dualtoken.js';
import { readBytes } from './io.js';
import { oneLine } from './messages.js';

export interface PixelCodes {
  codes: Int32Array;
  /** [B, h, w, D] */
  shape: number[];
}

/** A value from a file, shortened for a message. */
function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

function checkShape(shape: unknown[], what: string, quant: QuantizerConfig): number[] {
  if (!shape.every((d) => Number.isSafeInteger(d) && (d as number) > 0)) throw new Error(`${what}: shape ${show(shape)} must hold positive integers`);
  const want = quant.codeShape;
  if (shape.length !== 4 || shape.slice(1).some((d, i) => d !== want[i])) throw new Error(`${what}: shape [${shape}], the model takes [B,${want}]`);
  return shape as number[];
}

/** Every value an integer in [0, nEmbed); the first that is not is named by its [b,y,x,d] index. */
function checkValues(values: ArrayLike<unknown>, shape: number[], what: string, quant: QuantizerConfig): void {
  const count = shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw new Error(`${what}: ${values.length} values, its shape [${shape}] needs ${count}`);
  const [, h, w, D] = shape;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < quant.nEmbed) continue;
    const at = [Math.floor(i / (h * w * D)), Math.floor(i / (w * D)) % h, Math.floor(i / D) % w, i % D];
    const why = typeof v === 'number' && Number.isInteger(v) ? 'is out of range for' : 'is not a code of';
    throw new Error(`${what}[${at}] = ${show(v)} ${why} the ${quant.nEmbed}-entry codebook`);
  }
}

function jsonCodes(bytes: Uint8Array, label: string, quant: QuantizerConfig): PixelCodes {
  let j: unknown;
  try {
    j = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new Error(`${label}: not valid JSON (${oneLine((e as Error).message)})`);
  }
  const { shape, pixel } = (typeof j === 'object' && j !== null ? j : {}) as { shape?: unknown; pixel?: unknown };
  if (!Array.isArray(shape) || !Array.isArray(pixel)) throw new Error(`${label}: expected token JSON {shape, pixel: [...]}`);
  const dims = checkShape(shape, label, quant);
  checkValues(pixel, dims, `${label}: pixel`, quant);
  return { codes: Int32Array.from(pixel as number[]), shape: dims };
}

async function safetensorsCodes(bytes: Uint8Array, label: string, quant: QuantizerConfig): Promise<PixelCodes> {
  const st = await openSafetensors(new MemoryReader(bytes, label));
  const info = st.info('code_pix');
  if (!info) throw new Error(`${label}: no tensor 'code_pix'`);
  const shape = checkShape(info.shape, `${label}: code_pix`, quant);
  const codes = toInt32(await st.read('code_pix'), info.dtype, `${label}: code_pix`);
  checkValues(codes, shape, `${label}: code_pix`, quant);
  return { codes, shape };
}

/** Pixel codes from the bytes of a codes file (JSON when `label` ends in .json, else safetensors). */
export async function parseCodes(bytes: Uint8Array, label: string, quant: QuantizerConfig): Promise<PixelCodes> {
  return label.toLowerCase().endsWith('.json') ? jsonCodes(bytes, label, quant) : safetensorsCodes(bytes, label, quant);
}

export async function readCodes(path: string, quant: QuantizerConfig): Promise<PixelCodes> {
  return parseCodes(readBytes(path), path, quant);
}

/** The file `encode` writes: safetensors with the four tensors, or JSON; `files` names the images. */
export function codesFile(config: DualTokenConfig, r: EncodeResult, files: string[] | undefined, json: boolean): Uint8Array | string {
  const [h, w, D] = config.quantPix.codeShape;
  const [hs, ws, Ds] = config.quantSem.codeShape;
  const C = config.vision.hiddenSize;
  const B = r.batch;
  if (json) {
    return JSON.stringify({ shape: [B, h, w, D], pixel: Array.from(r.pixelCodes), semantic_shape: [B, hs, ws, Ds], semantic: Array.from(r.semanticCodes), ...(files && { files }) });
  }
  return encodeSafetensors(
    {
      code_pix: { dtype: 'I32', shape: [B, h, w, D], data: r.pixelCodes },
      code_sem: { dtype: 'I32', shape: [B, hs, ws, Ds], data: r.semanticCodes },
      z_q_sem: { dtype: 'F32', shape: [B, hs * ws, C], data: r.semanticFeatures },
      pooler_output: { dtype: 'F32', shape: [B, C], data: r.embedding },
    },
    files && { files: JSON.stringify(files) },
  );
}
