// The official state_dict's image-path tensors and their shapes, derived from a config: the
// contract between a checkpoint and the engine (synthetic weights, `info`, missing-tensor checks).
import type { DecoderConfig, DualTokenConfig, QuantizerConfig } from '../core/config.js';
import { gridSize } from '../core/config.js';
import { VISION } from './siglip.js';

type Shapes = Map<string, number[]>;

function linearShapes(m: Shapes, pre: string, cin: number, cout: number, bias = true): void {
  m.set(`${pre}.weight`, [cout, cin]);
  if (bias) m.set(`${pre}.bias`, [cout]);
}

function normShapes(m: Shapes, pre: string, c: number): void {
  m.set(`${pre}.weight`, [c]);
  m.set(`${pre}.bias`, [c]);
}

function visionShapes(m: Shapes, cfg: DualTokenConfig): void {
  const v = cfg.vision;
  const C = v.hiddenSize;
  const G = gridSize(v);
  m.set(`${VISION}.embeddings.patch_embedding.weight`, [C, v.numChannels, v.patchSize, v.patchSize]);
  m.set(`${VISION}.embeddings.patch_embedding.bias`, [C]);
  m.set(`${VISION}.embeddings.position_embedding.weight`, [G * G, C]);
  const mlp = (pre: string) => {
    linearShapes(m, `${pre}.fc1`, C, v.intermediateSize);
    linearShapes(m, `${pre}.fc2`, v.intermediateSize, C);
  };
  for (let i = 0; i < v.numLayers; i++) {
    const pre = `${VISION}.encoder.layers.${i}`;
    normShapes(m, `${pre}.layer_norm1`, C);
    normShapes(m, `${pre}.layer_norm2`, C);
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linearShapes(m, `${pre}.self_attn.${p}`, C, C);
    mlp(`${pre}.mlp`);
  }
  normShapes(m, `${VISION}.post_layernorm`, C);
  m.set(`${VISION}.head.probe`, [1, 1, C]);
  m.set(`${VISION}.head.attention.in_proj_weight`, [3 * C, C]);
  m.set(`${VISION}.head.attention.in_proj_bias`, [3 * C]);
  linearShapes(m, `${VISION}.head.attention.out_proj`, C, C);
  normShapes(m, `${VISION}.head.layernorm`, C);
  mlp(`${VISION}.head.mlp`);
}

/** AttnProjection in -> out; heads = C / E in both directions, so q/k/v span the width C. */
function attnProjectionShapes(m: Shapes, pre: string, cin: number, cout: number, C: number): void {
  normShapes(m, `${pre}.norm1`, cin);
  normShapes(m, `${pre}.norm3`, cin);
  normShapes(m, `${pre}.norm2`, cout);
  m.set(`${pre}.attn.qkv.weight`, [3 * C, cin]);
  for (const b of ['q_bias', 'zero_k_bias', 'v_bias']) m.set(`${pre}.attn.${b}`, [C]);
  const attnOut = cin > cout ? cout : C; // prequant averages heads to E; postquant concatenates to C
  linearShapes(m, `${pre}.attn.proj`, attnOut, attnOut);
  linearShapes(m, `${pre}.proj`, cin, cout);
  normShapes(m, `${pre}.mlp.norm`, cout);
  linearShapes(m, `${pre}.mlp.w0`, cout, 2 * cout);
  linearShapes(m, `${pre}.mlp.w1`, cout, 2 * cout);
  linearShapes(m, `${pre}.mlp.w2`, 2 * cout, cout);
}

function quantizerShapes(m: Shapes, pre: string, q: QuantizerConfig): void {
  for (let d = 0; d < q.depth; d++) {
    m.set(`${pre}.codebooks.${d}.weight`, [q.nEmbed + 1, q.embedDim]);
    m.set(`${pre}.codebooks.${d}.cluster_size_ema`, [q.nEmbed]);
    m.set(`${pre}.codebooks.${d}.embed_ema`, [q.nEmbed, q.embedDim]);
  }
}

function decoderShapes(m: Shapes, cfg: DecoderConfig, hidden: number): void {
  const conv = (pre: string, cin: number, cout: number, k: number) => {
    m.set(`${pre}.weight`, [cout, cin, k, k]);
    m.set(`${pre}.bias`, [cout]);
  };
  const block = (pre: string, cin: number, cout: number, k1: number) => {
    normShapes(m, `${pre}.norm1`, cin);
    conv(`${pre}.conv1`, cin, cout, k1);
    normShapes(m, `${pre}.norm2`, cout);
    conv(`${pre}.conv2`, cout, cout, 3);
    if (cin !== cout) conv(`${pre}.nin_shortcut`, cin, cout, 1);
  };
  const attn = (pre: string, c: number) => {
    normShapes(m, `${pre}.norm`, c);
    for (const n of ['q', 'k', 'v', 'proj_out']) conv(`${pre}.${n}`, c, c, 1);
  };
  block('post_quant_conv', hidden, cfg.inChannels, 1);
  const levels = cfg.chMult.length;
  let c = cfg.ch * cfg.chMult[levels - 1];
  conv('decoder.conv_in', cfg.inChannels, c, 3);
  block('decoder.mid.block_1', c, c, 3);
  attn('decoder.mid.attn_1', c);
  block('decoder.mid.block_2', c, c, 3);
  let res = Math.floor(cfg.resolution / 2 ** (levels - 1));
  for (let i = levels - 1; i >= 0; i--) {
    const out = cfg.ch * cfg.chMult[i];
    for (let j = 0; j <= cfg.numResBlocks; j++) {
      block(`decoder.up.${i}.block.${j}`, c, out, 3);
      c = out;
      if (cfg.attnResolutions.includes(res)) attn(`decoder.up.${i}.attn.${j}`, c);
    }
    if (i !== 0) {
      conv(`decoder.up.${i}.upsample.conv`, c, c, 3);
      res *= 2;
    }
  }
  normShapes(m, 'decoder.norm_out', c);
  conv('decoder.conv_out', c, cfg.outCh, 3);
}

/** Every image-path tensor of the official state_dict (text tower excluded), with its shape. */
export function imagePathShapes(cfg: DualTokenConfig): Shapes {
  const m: Shapes = new Map();
  const C = cfg.vision.hiddenSize;
  visionShapes(m, cfg);
  const Ep = cfg.quantPix.embedDim;
  const Es = cfg.quantSem.embedDim;
  if (cfg.layerShortcut !== null) attnProjectionShapes(m, 'prequant_shortcut', C, Ep, C);
  attnProjectionShapes(m, 'prequant_pix', C, Ep, C);
  attnProjectionShapes(m, 'prequant_sem', C, Es, C);
  attnProjectionShapes(m, 'postquant_pix', Ep, C, C);
  attnProjectionShapes(m, 'postquant_sem', Es, C, C);
  quantizerShapes(m, 'quantizer_pix', cfg.quantPix);
  quantizerShapes(m, 'quantizer_sem', cfg.quantSem);
  decoderShapes(m, cfg.decoder, C);
  return m;
}

/**
 * Every text-tower tensor of the official state_dict (`siglip_model.text_model.*` and the two
 * logit parameters), with its shape; empty when the config has no text_config. The token
 * embedding table [vocab, C] is among them (its rows are gathered on the CPU, never uploaded).
 */
export function textShapes(cfg: DualTokenConfig): Shapes {
  const m: Shapes = new Map();
  const t = cfg.text;
  if (!t) return m;
  const T = 'siglip_model.text_model';
  const C = t.hiddenSize;
  m.set(`${T}.embeddings.token_embedding.weight`, [t.vocabSize, C]);
  m.set(`${T}.embeddings.position_embedding.weight`, [t.maxPositionEmbeddings, C]);
  for (let i = 0; i < t.numLayers; i++) {
    const pre = `${T}.encoder.layers.${i}`;
    normShapes(m, `${pre}.layer_norm1`, C);
    normShapes(m, `${pre}.layer_norm2`, C);
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linearShapes(m, `${pre}.self_attn.${p}`, C, C);
    linearShapes(m, `${pre}.mlp.fc1`, C, t.intermediateSize);
    linearShapes(m, `${pre}.mlp.fc2`, t.intermediateSize, C);
  }
  normShapes(m, `${T}.final_layer_norm`, C);
  linearShapes(m, `${T}.head`, C, C);
  m.set('siglip_model.logit_scale', [1]);
  m.set('siglip_model.logit_bias', [1]);
  return m;
}
