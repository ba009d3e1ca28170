// The SigLIP text tower (HF transformers v4.44.0 SiglipTextTransformer, as DualToken's
// encode_text runs it), weights by their official state_dict names under
// `siglip_model.text_model.`. The token embedding table is never uploaded (256000 x 1152 f32 is
// 1.18 GB at the real size): the caller gathers the rows of the prompt's ids on the CPU and
// hands them in as `tokens` [T, L, C] (see TextTower in text-model.ts).
//
// Semantics (test/fixtures/golden/tiny/README.md, "Text tower"): embeddings = token rows +
// position_embedding[0..L-1]; pre-LN encoder layers identical to the vision ones; attention NOT
// causal and NOT masked (pads attend and are attended to); final_layer_norm over all positions;
// pooled = the LAST position (index L - 1) unconditionally; head = Linear(C, C) with bias.
import type { TextConfig } from '../core/config.js';
import { addScaled } from '../core/ops.js';
import { attention, heads } from '../ops/attention/attention.js';
import { layerNorm } from '../ops/layer_norm/layer_norm.js';
import { linear } from '../ops/linear/linear.js';
import type { Program } from '../core/program.js';
import { shapeStr, type Tensor } from '../core/tensor.js';
import type { Weights } from '../core/weights.js';
import { siglipMlp } from './siglip.js';

export const TEXT = 'siglip_model.text_model';
export const TOKEN_EMBEDDING = `${TEXT}.embeddings.token_embedding.weight`;
/** The [1]-shaped logit parameters of SiglipModel: logit_scale is stored as a log. */
export const LOGIT_SCALE = 'siglip_model.logit_scale';
export const LOGIT_BIAS = 'siglip_model.logit_bias';

/**
 * Deliberately wrong variants, for tests only (they show that the golden comparison would catch
 * a CLIP-style causal mask or another pooled position). The official tower uses neither.
 */
export interface TextVariant {
  /** Causal attention (token i sees 0..i): wrong for SigLIP. */
  causal?: boolean;
  /** Pool this position instead of the last one: wrong unless L - 1. */
  poolIndex?: number;
}

/** Source tensors the text tower uploads: everything under text_model except the token embedding table (gathered on the CPU). */
export function usedByText(name: string): boolean {
  return name.startsWith(`${TEXT}.`) && name !== TOKEN_EMBEDDING;
}

/** The text tower's linear weights (read by linear(): packed layouts under the kn* variants). */
export function isTextLinearWeight(name: string): boolean {
  return name === `${TEXT}.head.weight` || (name.startsWith(`${TEXT}.encoder.layers.`) && /\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))\.weight$/.test(name));
}

/** SiglipEncoderLayer `index` of the text tower: the vision layer's ops with the text config.  [T,L,C] -> [T,L,C] */
export function textEncoderLayer(prog: Program, w: Weights, cfg: TextConfig, index: number, x: Tensor, causal = false): Tensor {
  const pre = `${TEXT}.encoder.layers.${index}`;
  const [B, L, C] = x.shape;
  const H = cfg.numHeads;
  const eps = cfg.layerNormEps;
  const h1 = layerNorm(prog, x, w.get(`${pre}.layer_norm1.weight`, [C]), w.get(`${pre}.layer_norm1.bias`, [C]), eps); // [T, L, C]
  const proj = (n: string) => linear(prog, h1, w.get(`${pre}.self_attn.${n}.weight`, [C, C]), { bias: w.get(`${pre}.self_attn.${n}.bias`, [C]), label: `${pre}.${n}` });
  const q = proj('q_proj');
  const k = proj('k_proj');
  const v = proj('v_proj'); // each [T, L, C] = [T, L, H * D]
  const a = attention(prog, { B, H, D: C / H, Lq: L, Lk: L, q: heads(q), k: heads(k), v: heads(v), causal, label: `${pre}.attn` }); // [T, L, C]
  const h = linear(prog, a, w.get(`${pre}.self_attn.out_proj.weight`, [C, C]), { bias: w.get(`${pre}.self_attn.out_proj.bias`, [C]), residual: x, label: `${pre}.out_proj` });
  const h2 = layerNorm(prog, h, w.get(`${pre}.layer_norm2.weight`, [C]), w.get(`${pre}.layer_norm2.bias`, [C]), eps);
  return siglipMlp(prog, w, `${pre}.mlp`, h2, h); // [T, L, C]
}

/**
 * The text tower from gathered token rows: tokens [T, L, C] (token_embedding.weight[ids]) ->
 * text_embeds_raw [T, C] (pinned). Taps: text_hidden_states.0..N, text_last_hidden_state,
 * text_pooled, text_embeds_raw.
 */
export function textTower(prog: Program, w: Weights, cfg: TextConfig, tokens: Tensor, variant: TextVariant = {}): Tensor {
  const [T, L, C] = tokens.shape;
  if (tokens.shape.length !== 3 || L !== cfg.maxPositionEmbeddings || C !== cfg.hiddenSize) {
    throw new Error(`text tower: tokens ${shapeStr(tokens.shape)} must be [T, max_position_embeddings = ${cfg.maxPositionEmbeddings}, hidden_size = ${cfg.hiddenSize}]`);
  }
  // SiglipTextEmbeddings: position_ids = arange(L), L = max_position_embeddings: the whole table.
  let x = addScaled(prog, tokens, w.get(`${TEXT}.embeddings.position_embedding.weight`, [L, C]), 1, 'text_embeddings'); // [T, L, C]
  prog.tap('text_hidden_states.0', x);
  for (let i = 1; i <= cfg.numLayers; i++) {
    x = textEncoderLayer(prog, w, cfg, i - 1, x, variant.causal ?? false);
    prog.tap(`text_hidden_states.${i}`, x);
  }
  const last = layerNorm(prog, x, w.get(`${TEXT}.final_layer_norm.weight`, [C]), w.get(`${TEXT}.final_layer_norm.bias`, [C]), cfg.layerNormEps, 'final_layer_norm'); // [T, L, C]
  prog.tap('text_last_hidden_state', last);
  const index = variant.poolIndex ?? L - 1;
  if (!(Number.isInteger(index) && index >= 0 && index < L)) throw new Error(`text tower: pooled position ${index} is not in 0..${L - 1}`);
  // The pooled row last[:, index, :], gathered with the attention kernel over a single key: the
  // softmax of one score is exactly 1, so each head's output is that position's value row, bit
  // for bit (an exact copy with the engine's kernels; no gather kernel of its own).
  const H = cfg.numHeads;
  const row = { t: last, off: index * C, bs: L * C, rs: C };
  const pooled = attention(prog, { B: T, H, D: C / H, Lq: 1, Lk: 1, q: row, k: row, v: row, label: 'text_pool' }); // [T, 1, C]
  prog.tap('text_pooled', pooled);
  const raw = linear(prog, pooled, w.get(`${TEXT}.head.weight`, [C, C]), { bias: w.get(`${TEXT}.head.bias`, [C]), label: 'text_head' }).view([T, C]); // [T, C]
  raw.pinned = true;
  prog.tap('text_embeds_raw', raw);
  return raw;
}
