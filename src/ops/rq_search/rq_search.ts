// rq_search: the nearest-codeword search of residual quantization (RQBottleneck.quantize's
// codes), in the variant the adapter's choice gives (spec.ts).
import { cdiv, expect } from '../../core/arith.js';
import type { Program } from '../../core/program.js';
import { Tensor, lastDim, shapeStr } from '../../core/tensor.js';
import { variantsOf } from '../choice.js';

/** The codebook as rq_search reads it: candidates only, rows zero-padded to a multiple of 4. */
export interface SearchCodebook {
  /** [K, ceil(E/4)*4]: the codebook weight without its padding row. */
  rows: Tensor;
  /** [K] |row_k|^2 */
  normSq: Tensor;
}

/**
 * Builds rq_search's codebook from a VQEmbedding weight [K+1, E] (row K = padding_idx, never a
 * candidate): rows [K, E4*4] zero-padded, and their squared norms (float64, rounded once).
 */
export function searchCodebookData(weight: Float32Array, shape: number[]): { rows: Float32Array; normSq: Float32Array; K: number; width: number } {
  const [rows, E] = shape;
  const K = rows - 1;
  expect(shape.length === 2 && K >= 1 && weight.length === rows * E, () => `codebook weight ${shapeStr(shape)}: needs [n_embed + 1, E] with n_embed >= 1`);
  const width = Math.ceil(E / 4) * 4;
  const out = new Float32Array(K * width);
  const normSq = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let e = 0; e < E; e++) {
      const v = weight[k * E + e];
      out[k * width + e] = v;
      s += v * v;
    }
    normSq[k] = s;
  }
  return { rows: out, normSq, K, width };
}

export interface RqSearchResult {
  /** [..., D] i32 codes, the token dims of x first (= [B, h, w, D] for raster tokens). */
  codes: Tensor;
  /** [..., D] second-best minus best squared distance of each selection. */
  margin: Tensor;
}

/** Tokens per workgroup of rq_search ('lanes'): 8 invocations x TB = 4 tokens each. */
const RQ_TOKENS_PER_GROUP = 32;

/** Invocations per workgroup of rq_search_wg: 256, or the largest power of two the device allows. */
function rqWorkgroup(prog: Program): number {
  const limit = prog.gpu.device.limits.maxComputeInvocationsPerWorkgroup;
  return 2 ** Math.floor(Math.log2(Math.min(256, limit)));
}

/**
 * The codes of residual quantization with one codebook shared by all D depths
 * (RQBottleneck.quantize; z_q is rqEmbed of the codes).  x [..., E] -> codes [..., D] i32, margin [..., D]
 * Variant 'lanes' (rq_search.wgsl, CPU drivers) or 'workgroup' (rq_search_wg.wgsl, GPUs): same codes.
 */
export function rqSearch(prog: Program, x: Tensor, codebook: SearchCodebook, depth: number, label = 'rq'): RqSearchResult {
  const E = lastDim(x);
  const [K, width] = codebook.rows.shape;
  const what = codebook.rows.label;
  expect(codebook.rows.shape.length === 2 && width === Math.ceil(E / 4) * 4, () => `rq_search ${what}: codebook ${shapeStr(codebook.rows.shape)} for tokens ${shapeStr(x.shape)}`);
  expect(codebook.normSq.numel === K, () => `rq_search ${what}: norms ${shapeStr(codebook.normSq.shape)} for ${K} codewords`);
  expect(Number.isInteger(depth) && depth >= 1, () => `rq_search ${what}: depth ${depth}`);
  const lead = x.shape.slice(0, -1);
  const T = x.numel / E;
  const codes = prog.alloc([...lead, depth], `${label}.codes`, 'i32');
  const margin = prog.alloc([...lead, depth], `${label}.margin`);
  const workgroup = variantsOf(prog.kernels).choose('rq_search', { T, K, E }, () => `rq_search ${what} for ${shapeStr(x.shape)}`) === 'workgroup';
  prog.dispatch({
    kernel: workgroup ? 'rq_search_wg' : 'rq_search',
    defines: workgroup ? { EMBED_DIM: E, WORKGROUP: rqWorkgroup(prog) } : { EMBED_DIM: E },
    uniforms: { T, K, D: depth },
    bind: { x, w: codebook.rows, w_norm: codebook.normSq, codes, margin },
    groups: workgroup ? T : cdiv(T, RQ_TOKENS_PER_GROUP),
    cost: { flops: 2 * T * depth * K * width },
  });
  return { codes, margin };
}

