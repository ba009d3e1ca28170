// The SigLIP vision tower (HF transformers SiglipVisionTransformer), one function per module,
// weights by their official state_dict names under `siglip_model.vision_model.`.
import type { VisionConfig } from '../core/config.js';
import { addScaled, patchIm2col } from '../core/ops.js';
import { attention, heads } from '../ops/attention/attention.js';
import { layerNorm } from '../ops/layer_norm/layer_norm.js';
import { linear } from '../ops/linear/linear.js';
import type { Program } from '../core/program.js';
import type { Tensor } from '../core/tensor.js';
import type { Weights } from '../core/weights.js';

export const VISION = 'siglip_model.vision_model';

/** SiglipVisionEmbeddings: patch conv (kernel = stride = P) + position embedding.  [B,3,S,S] -> [B,L,C] */
export function siglipEmbeddings(prog: Program, w: Weights, cfg: VisionConfig, pixels: Tensor): Tensor {
  const P = cfg.patchSize;
  const C = cfg.hiddenSize;
  const G = Math.floor(cfg.imageSize / P);
  const pre = `${VISION}.embeddings`;
  const cols = patchIm2col(prog, pixels, P); // [B, L, 3*P*P]
  const patches = linear(prog, cols, w.get(`${pre}.patch_embedding.weight`, [C, cfg.numChannels, P, P]), {
    bias: w.get(`${pre}.patch_embedding.bias`, [C]),
    label: 'patch_embedding',
  }); // [B, L, C]
  const x = addScaled(prog, patches, w.get(`${pre}.position_embedding.weight`, [G * G, C]), 1, 'embeddings'); // [B, L, C]
  return x;
}

/** SiglipMLP: fc2(gelu_tanh(fc1(x))) + residual.  [B,L,C] -> [B,L,C] */
export function siglipMlp(prog: Program, w: Weights, pre: string, x: Tensor, residual: Tensor): Tensor {
  const h = linear(prog, x, w.get(`${pre}.fc1.weight`), { bias: w.get(`${pre}.fc1.bias`), act: 'gelu_tanh', label: `${pre}.fc1` }); // [B, L, I]
  const y = linear(prog, h, w.get(`${pre}.fc2.weight`), { bias: w.get(`${pre}.fc2.bias`), residual, label: `${pre}.fc2` }); // [B, L, C]
  return y;
}

/** SiglipEncoderLayer `index` (0-based in the checkpoint): pre-LN attention and MLP blocks.  [B,L,C] -> [B,L,C] */
export function siglipEncoderLayer(prog: Program, w: Weights, cfg: VisionConfig, index: number, x: Tensor): Tensor {
  const pre = `${VISION}.encoder.layers.${index}`;
  const [B, L, C] = x.shape;
  const H = cfg.numHeads;
  const eps = cfg.layerNormEps;
  const h1 = layerNorm(prog, x, w.get(`${pre}.layer_norm1.weight`), w.get(`${pre}.layer_norm1.bias`), eps); // [B, L, C]
  const proj = (n: string) => linear(prog, h1, w.get(`${pre}.self_attn.${n}.weight`, [C, C]), { bias: w.get(`${pre}.self_attn.${n}.bias`), label: `${pre}.${n}` });
  const q = proj('q_proj');
  const k = proj('k_proj');
  const v = proj('v_proj'); // each [B, L, C] = [B, L, H * D]
  const a = attention(prog, { B, H, D: C / H, Lq: L, Lk: L, q: heads(q), k: heads(k), v: heads(v), label: `${pre}.attn` }); // [B, L, C]
  const h = linear(prog, a, w.get(`${pre}.self_attn.out_proj.weight`), { bias: w.get(`${pre}.self_attn.out_proj.bias`), residual: x, label: `${pre}.out_proj` });
  const h2 = layerNorm(prog, h, w.get(`${pre}.layer_norm2.weight`), w.get(`${pre}.layer_norm2.bias`), eps);
  const y = siglipMlp(prog, w, `${pre}.mlp`, h2, h); // [B, L, C]
  return y;
}

/** SiglipMultiheadAttentionPoolingHead: the probe attends over the tokens, then an MLP block.  [B,L,C] -> [B,C] */
export function siglipHead(prog: Program, w: Weights, cfg: VisionConfig, x: Tensor): Tensor {
  const pre = `${VISION}.head`;
  const [B, L, C] = x.shape;
  const H = cfg.numHeads;
  const inW = w.get(`${pre}.attention.in_proj_weight`, [3 * C, C]);
  const inB = w.get(`${pre}.attention.in_proj_bias`, [3 * C]);
  // Packed in_proj rows are (q, k, v): one projection of the probe gives q, one of the tokens gives k and v.
  const qAll = linear(prog, w.get(`${pre}.probe`, [1, 1, C]), inW, { bias: inB, label: `${pre}.q` }); // [1, 1, 3C]
  const kv = linear(prog, x, inW, { bias: inB, label: `${pre}.kv` }); // [B, L, 3C]
  const a = attention(prog, {
    B, H, D: C / H, Lq: 1, Lk: L,
    q: heads(qAll, 0, 0), k: heads(kv, C), v: heads(kv, 2 * C),
    label: `${pre}.attn`,
  }); // [B, 1, C]
  const r = linear(prog, a, w.get(`${pre}.attention.out_proj.weight`), { bias: w.get(`${pre}.attention.out_proj.bias`), label: `${pre}.out_proj` }); // [B, 1, C]
  const n = layerNorm(prog, r, w.get(`${pre}.layernorm.weight`), w.get(`${pre}.layernorm.bias`), cfg.layerNormEps);
  const y = siglipMlp(prog, w, `${pre}.mlp`, n, r); // [B, 1, C]
  return y.view([B, C]);
}

/** post_layernorm.  [B,L,C] -> [B,L,C] */
export function siglipPostLayerNorm(prog: Program, w: Weights, cfg: VisionConfig, x: Tensor): Tensor {
  return layerNorm(prog, x, w.get(`${VISION}.post_layernorm.weight`), w.get(`${VISION}.post_layernorm.bias`), cfg.layerNormEps, 'post_layernorm');
}
