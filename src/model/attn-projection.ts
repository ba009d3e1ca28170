// DualToken's AttnProjection (prequant_*: C -> E, postquant_*: E -> C), weights by their official
// names under `prefix`: y = proj(norm3(x)) + attn(norm1(x)); y = y + mlp(norm2(y)).
import { attention, heads } from '../ops/attention/attention.js';
import { layerNorm } from '../ops/layer_norm/layer_norm.js';
import { linear } from '../ops/linear/linear.js';
import type { Program } from '../core/program.js';
import { meanHeads, mul } from '../core/quant-ops.js';
import { shapeStr, type Tensor } from '../core/tensor.js';
import type { Weights } from '../core/weights.js';

/** norm1 / norm2 / norm3 are nn.LayerNorm with PyTorch's default eps. */
const NORM_EPS = 1e-5;
/** GeGluMlp's own LayerNorm (timm, eps 1e-6). */
const MLP_NORM_EPS = 1e-6;

/** The packed qkv bias [q_bias, zero_k_bias, v_bias], built at load by prepareAttnProjection. */
function qkvBiasName(prefix: string): string {
  return `${prefix}.attn.qkv.bias`;
}

/** The source tensors the packed qkv bias is made of, in order. */
export function qkvBiasParts(prefix: string): string[] {
  return [`${prefix}.attn.q_bias`, `${prefix}.attn.zero_k_bias`, `${prefix}.attn.v_bias`];
}

/** Builds the derived weights of one AttnProjection (its packed qkv bias). */
export async function prepareAttnProjection(w: Weights, prefix: string): Promise<void> {
  await w.concat(qkvBiasName(prefix), qkvBiasParts(prefix));
}

/** GeGluMlp: w2(gelu_tanh(w0 n) * w1 n) with n = mlp.norm(z), plus `residual`.  [B,L,N] -> [B,L,N] */
function geGluMlp(prog: Program, w: Weights, pre: string, z: Tensor, residual: Tensor): Tensor {
  const n = layerNorm(prog, z, w.get(`${pre}.norm.weight`), w.get(`${pre}.norm.bias`), MLP_NORM_EPS, `${pre}.norm`);
  const g = linear(prog, n, w.get(`${pre}.w0.weight`), { bias: w.get(`${pre}.w0.bias`), act: 'gelu_tanh', label: `${pre}.w0` }); // [B, L, 2N]
  const u = linear(prog, n, w.get(`${pre}.w1.weight`), { bias: w.get(`${pre}.w1.bias`), label: `${pre}.w1` }); // [B, L, 2N]
  const h = mul(prog, g, u, `${pre}.gate`);
  const y = linear(prog, h, w.get(`${pre}.w2.weight`), { bias: w.get(`${pre}.w2.bias`), residual, label: `${pre}.w2` }); // [B, L, N]
  return y;
}

/**
 * AttnProjection `prefix` on x [B, L, in] -> [B, L, out], out = proj.weight rows.
 * `numHeads` = hidden_size // embed_dim, as the official constructor is given it. The qkv Linear
 * is [3*inner, in] with inner = max(in, out) and head_dim = inner / numHeads.
 * - in > out (prequant): non-causal attention, heads AVERAGED -> [B, L, head_dim = out], attn.proj.
 * - in < out (postquant): CAUSAL attention (token i sees j <= i), heads concatenated -> attn.proj.
 */
export function attnProjection(prog: Program, w: Weights, prefix: string, x: Tensor, numHeads: number): Tensor {
  const [B, L, inDim] = x.shape;
  const projW = w.get(`${prefix}.proj.weight`);
  const outDim = projW.shape[0];
  const qkvW = w.get(`${prefix}.attn.qkv.weight`);
  const inner = qkvW.shape[0] / 3;
  const where = `${prefix}: input ${shapeStr(x.shape)}, proj ${shapeStr(projW.shape)}, qkv ${shapeStr(qkvW.shape)}, ${numHeads} heads`;
  if (x.shape.length !== 3 || projW.shape[1] !== inDim || qkvW.shape[1] !== inDim) throw new Error(`${where}: shapes do not match`);
  if (inDim === outDim || inner !== Math.max(inDim, outDim) || inner % numHeads !== 0) throw new Error(`${where}: not an AttnProjection between two widths`);
  const headDim = inner / numHeads;
  const reduce = inDim > outDim;
  // The official code follows the head mean with adaptive_avg_pool1d when head_dim != out; no released config needs it.
  if (reduce && headDim !== outDim) throw new Error(`${where}: head_dim ${headDim} != output width ${outDim} (adaptive pooling is not supported)`);

  const n3 = layerNorm(prog, x, w.get(`${prefix}.norm3.weight`), w.get(`${prefix}.norm3.bias`), NORM_EPS, `${prefix}.norm3`);
  const direct = linear(prog, n3, projW, { bias: w.get(`${prefix}.proj.bias`), label: `${prefix}.proj` }); // [B, L, out]

  const n1 = layerNorm(prog, x, w.get(`${prefix}.norm1.weight`), w.get(`${prefix}.norm1.bias`), NORM_EPS, `${prefix}.norm1`);
  const qkv = linear(prog, n1, qkvW, { bias: w.get(qkvBiasName(prefix), [3 * inner]), label: `${prefix}.attn.qkv` }); // [B, L, 3*inner]
  const a = attention(prog, {
    B, H: numHeads, D: headDim, Lq: L, Lk: L,
    q: heads(qkv, 0), k: heads(qkv, inner), v: heads(qkv, 2 * inner),
    causal: !reduce,
    label: `${prefix}.attn`,
  }); // [B, L, inner]
  const merged = reduce ? meanHeads(prog, a, numHeads, `${prefix}.attn.mean`) : a; // [B, L, out]
  const y = linear(prog, merged, w.get(`${prefix}.attn.proj.weight`, [outDim, outDim]), {
    bias: w.get(`${prefix}.attn.proj.bias`),
    residual: direct,
    label: `${prefix}.attn.proj`,
  }); // [B, L, out] = proj(norm3(x)) + attn(norm1(x))

  const n2 = layerNorm(prog, y, w.get(`${prefix}.norm2.weight`), w.get(`${prefix}.norm2.bias`), NORM_EPS, `${prefix}.norm2`);
  const out = geGluMlp(prog, w, `${prefix}.mlp`, n2, y); // [B, L, out]
  return out;
}
