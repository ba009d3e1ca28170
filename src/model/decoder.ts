// The pixel decoder (DualToken modules.py: PostQuantResnetBlock, ResnetBlock, AttnBlock, Decoder,
// from the VQGAN / RQ-VAE family), one function per module, weights by their official
// state_dict names under `post_quant_conv.` and `decoder.`. Everything is NCHW.
import type { DecoderConfig, DualTokenConfig } from '../core/config.js';
import { conv2d } from '../ops/conv2d/conv2d.js';
import { groupNorm } from '../ops/group_norm/group_norm.js';
import { resizeBilinear, spatialAttention, tokensToNchw, upsampleNearest2x } from '../core/conv-ops.js';
import { describeNonFinite, type Program } from '../core/program.js';
import type { Tensor } from '../core/tensor.js';
import type { Weights } from '../core/weights.js';

/** modules.py Normalize: GroupNorm(32 groups, eps 1e-6, affine). */
const GN_GROUPS = 32;
const GN_EPS = 1e-6;

/** Whether a state_dict tensor belongs to the decoder path (post_quant_conv + decoder). */
export function usedByDecoder(name: string): boolean {
  return name.startsWith('post_quant_conv.') || name.startsWith('decoder.');
}

/** Normalize(C) `pre` [+ SiLU].  [B,C,H,W] -> [B,C,H,W] */
function norm(prog: Program, w: Weights, pre: string, x: Tensor, silu: boolean): Tensor {
  const C = x.shape[1];
  return groupNorm(prog, x, w.get(`${pre}.weight`, [C]), w.get(`${pre}.bias`, [C]), GN_EPS, { groups: GN_GROUPS, silu, label: pre });
}

/** Conv2d `pre` (k x k from its weight, stride 1, padding k/2) [+ residual].  [B,Cin,H,W] -> [B,Cout,H,W] */
function conv(prog: Program, w: Weights, pre: string, x: Tensor, residual?: Tensor): Tensor {
  const weight = w.get(`${pre}.weight`);
  return conv2d(prog, x, weight, w.get(`${pre}.bias`, [weight.shape[0]]), { residual, label: pre });
}

/**
 * The body shared by ResnetBlock and PostQuantResnetBlock: GN, SiLU, conv1, GN, SiLU, conv2, plus
 * the input, through `nin_shortcut` (1x1) when the channel count changes.  [B,Cin,H,W] -> [B,Cout,H,W]
 */
function residualBlock(prog: Program, w: Weights, pre: string, x: Tensor): Tensor {
  const h1 = norm(prog, w, `${pre}.norm1`, x, true);
  const c1 = conv(prog, w, `${pre}.conv1`, h1); // [B, Cout, H, W]
  const h2 = norm(prog, w, `${pre}.norm2`, c1, true);
  const changes = c1.shape[1] !== x.shape[1];
  const shortcut = changes ? conv(prog, w, `${pre}.nin_shortcut`, x) : x;
  const y = conv(prog, w, `${pre}.conv2`, h2, shortcut);
  return y;
}

/** ResnetBlock `pre` (3x3 conv1 and conv2, no time embedding).  [B,Cin,H,W] -> [B,Cout,H,W] */
export function resnetBlock(prog: Program, w: Weights, pre: string, x: Tensor): Tensor {
  return residualBlock(prog, w, pre, x);
}

/** PostQuantResnetBlock `post_quant_conv` (1x1 conv1, 3x3 conv2).  [B,C,h,w] -> [B,decoder_in_channels,h,w] */
export function postQuantConv(prog: Program, w: Weights, x: Tensor): Tensor {
  return residualBlock(prog, w, 'post_quant_conv', x);
}

/** AttnBlock `pre`: x + proj_out(attention(q, k, v of GN(x))), single head over H*W positions.  [B,C,H,W] -> [B,C,H,W] */
export function attnBlock(prog: Program, w: Weights, pre: string, x: Tensor): Tensor {
  const h = norm(prog, w, `${pre}.norm`, x, false);
  const q = conv(prog, w, `${pre}.q`, h);
  const k = conv(prog, w, `${pre}.k`, h);
  const v = conv(prog, w, `${pre}.v`, h);
  const a = spatialAttention(prog, q, k, v, { label: `${pre}.attention` });
  const y = conv(prog, w, `${pre}.proj_out`, a, x);
  return y;
}

/** The side length at which level i of the decoder runs, as the official Decoder decides attention. */
function levelResolution(cfg: DecoderConfig, level: number): number {
  const levels = cfg.chMult.length;
  const lowest = Math.floor(cfg.resolution / 2 ** (levels - 1)); // curr_res = resolution // 2**(num_resolutions-1)
  return lowest * 2 ** (levels - 1 - level);
}

/**
 * Decoder: conv_in, mid (block_1, attn_1, block_2), levels n-1 .. 0 (num_res_blocks+1 ResnetBlocks,
 * each followed by an AttnBlock at the attn_resolutions; nearest 2x + conv below level 0), then
 * norm_out, SiLU, conv_out. Taps `dec.conv_in`, `dec.mid`, `dec.up.{i}.out`.
 * z [B,decoder_in_channels,h,w] -> [B,out_ch,h*2^(n-1),w*2^(n-1)]
 */
export function decoder(prog: Program, w: Weights, cfg: DecoderConfig, z: Tensor): Tensor {
  let h = conv(prog, w, 'decoder.conv_in', z);
  prog.tap('dec.conv_in', h);
  h = resnetBlock(prog, w, 'decoder.mid.block_1', h);
  h = attnBlock(prog, w, 'decoder.mid.attn_1', h);
  h = resnetBlock(prog, w, 'decoder.mid.block_2', h);
  prog.tap('dec.mid', h);
  for (let i = cfg.chMult.length - 1; i >= 0; i--) {
    const pre = `decoder.up.${i}`;
    const attend = cfg.attnResolutions.includes(levelResolution(cfg, i));
    for (let j = 0; j <= cfg.numResBlocks; j++) {
      h = resnetBlock(prog, w, `${pre}.block.${j}`, h);
      if (attend) h = attnBlock(prog, w, `${pre}.attn.${j}`, h);
    }
    prog.tap(`dec.up.${i}.out`, h);
    if (i !== 0) {
      h = upsampleNearest2x(prog, h, { label: `${pre}.upsample` });
      h = conv(prog, w, `${pre}.upsample.conv`, h);
    }
  }
  h = norm(prog, w, 'decoder.norm_out', h, true);
  h = conv(prog, w, 'decoder.conv_out', h);
  return h;
}

/**
 * RQVAESiglipModel.decode after postquant_pix: tokens [B, L, C] (L = h*w, raster order) ->
 * NCHW -> bilinear resize to decoder_latent_shape -> post_quant_conv -> decoder.
 * Taps `decoder_input`, `post_quant_conv`, the decoder's, and `recon`; a non-finite recon fails the run (stage recon).
 * feats [B,L,C] -> recon [B,out_ch,R,R]
 */
export function decodeFromFeatures(prog: Program, w: Weights, cfg: DualTokenConfig, feats: Tensor): Tensor {
  const [, L] = feats.shape;
  const side = Math.round(Math.sqrt(L));
  if (feats.shape.length !== 3 || side * side !== L) throw new Error(`decoder: features must be [B, L, C] with L a square, got [${feats.shape}]`);
  const grid = tokensToNchw(prog, feats, side, side, { label: 'decoder.tokens' }); // [B, C, side, side]
  const z = resizeBilinear(prog, grid, cfg.decoder.latentShape, { label: 'decoder_input' }); // [B, C, h, w]
  prog.tap('decoder_input', z);
  const pq = postQuantConv(prog, w, z); // [B, decoder_in_channels, h, w]
  prog.tap('post_quant_conv', pq);
  const recon = decoder(prog, w, cfg.decoder, pq);
  prog.tap('recon', recon);
  prog.checkFinite(recon, (found) => `non-finite values in the reconstruction (stage recon): ${describeNonFinite(found)}`);
  return recon;
}
