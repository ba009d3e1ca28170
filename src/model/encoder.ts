// The DualToken encoder (official RQVAESiglipModel.encode_image): the SigLIP tower tapped after
// layer_shortcut / layer_recon / layer_sem (1-based), both residual quantizers, and the semantic
// branch whose postquant_sem output replaces the hidden state for the remaining layers. Also
// postquant_pix and decoding from codes, which the pixel decoder starts from.
import type { DualTokenConfig, QuantizerConfig } from '../core/config.js';
import { addScaled } from '../core/ops.js';
import { describeNonFinite, type Program } from '../core/program.js';
import { rqEmbed } from '../core/quant-ops.js';
import { rqSearch, searchCodebookData, type SearchCodebook } from '../ops/rq_search/rq_search.js';
import { shapeStr, type Tensor } from '../core/tensor.js';
import type { Weights } from '../core/weights.js';
import { attnProjection, prepareAttnProjection, qkvBiasParts } from './attn-projection.js';
import { siglipEmbeddings, siglipEncoderLayer, siglipHead, siglipPostLayerNorm, VISION } from './siglip.js';

export type Branch = 'pix' | 'sem';

export interface EncoderOutput {
  /** [B, h, w, D] i32 */
  codePix: Tensor;
  /** [B, h, w, D] i32 */
  codeSem: Tensor;
  /** [B, L, E] pixel quantizer output (sum of the chosen codewords) */
  zqPix: Tensor;
  /** [B, L, C] postquant_sem output: the hidden state that re-enters the tower */
  zqSem: Tensor;
  /** [B, C] the MAP head's output (the image embedding) */
  poolerOutput: Tensor;
}

const PROJECTIONS = ['prequant_shortcut', 'prequant_pix', 'prequant_sem', 'postquant_sem', 'postquant_pix'] as const;

function projections(cfg: DualTokenConfig): string[] {
  return PROJECTIONS.filter((p) => p !== 'prequant_shortcut' || cfg.layerShortcut !== null);
}

function quantizer(cfg: DualTokenConfig, branch: Branch): QuantizerConfig {
  return branch === 'pix' ? cfg.quantPix : cfg.quantSem;
}

/** The shared codebook [n_embed + 1, E]; `codebooks.1 ..` in the checkpoint repeat it. */
function codebookName(branch: Branch): string {
  return `quantizer_${branch}.codebooks.0.weight`;
}

/** rq_search's copy of a codebook, derived at load: candidate rows padded to 4, and their norms. */
function searchCodebook(w: Weights, cfg: DualTokenConfig, branch: Branch): SearchCodebook {
  const q = quantizer(cfg, branch);
  return {
    rows: w.get(`quantizer_${branch}.search.rows`, [q.nEmbed, Math.ceil(q.embedDim / 4) * 4]),
    normSq: w.get(`quantizer_${branch}.search.norm_sq`, [q.nEmbed]),
  };
}

/** AttnProjection heads: hidden_size // embed_dim, as the official model builds them. */
function projectionHeads(cfg: DualTokenConfig, branch: Branch): number {
  return Math.floor(cfg.vision.hiddenSize / quantizer(cfg, branch).embedDim);
}

/**
 * Source tensors the encoder (and postquantPix / embedCodes) reads: the vision tower, the
 * attention projections and codebooks.0 of each quantizer. Skipped: the text tower, the EMA
 * buffers, the repeated codebooks.1 ...
 */
export function usedByEncoder(name: string, cfg: DualTokenConfig): boolean {
  if (name.startsWith(`${VISION}.`)) return true;
  if (name === codebookName('pix') || name === codebookName('sem')) return true;
  return projections(cfg).includes(name.split('.')[0]);
}

/** Source tensors prepareEncoderWeights derives weights from (Weights.load keeps them on the host). */
export function usedByPrepare(name: string, cfg: DualTokenConfig): boolean {
  if (name === codebookName('pix') || name === codebookName('sem')) return true;
  return projections(cfg).some((p) => qkvBiasParts(p).includes(name));
}

/** Builds the derived weights: packed qkv biases of the projections, rq_search's codebooks. */
export async function prepareEncoderWeights(w: Weights, cfg: DualTokenConfig): Promise<void> {
  for (const p of projections(cfg)) await prepareAttnProjection(w, p);
  for (const branch of ['pix', 'sem'] as const) {
    const q = quantizer(cfg, branch);
    const name = codebookName(branch);
    const info = w.source.info(name);
    if (!info) throw new Error(`${w.source.label}: missing tensor '${name}'`);
    if (info.shape.length !== 2 || info.shape[0] !== q.nEmbed + 1 || info.shape[1] !== q.embedDim) {
      throw new Error(`${w.source.label}: '${name}' has shape ${shapeStr(info.shape)}, the config's vq_${branch} needs [n_embed + 1 = ${q.nEmbed + 1}, embed_dim = ${q.embedDim}]`);
    }
    const cb = searchCodebookData(await w.hostData(name), info.shape);
    w.set(`quantizer_${branch}.search.rows`, [cb.K, cb.width], cb.rows);
    w.set(`quantizer_${branch}.search.norm_sq`, [cb.K], cb.normSq);
  }
}

/** quantizer_{branch}: x [B, L, E] -> codes [B, h, w, D] i32 and z_q [B, L, E], with taps; a non-finite x fails the run (stage quant_{branch}). */
function quantize(prog: Program, w: Weights, cfg: DualTokenConfig, branch: Branch, x: Tensor): { codes: Tensor; zq: Tensor } {
  const q = quantizer(cfg, branch);
  const [h, wd, D] = q.codeShape;
  const [B, L, E] = x.shape;
  if (L !== h * wd || E !== q.embedDim) throw new Error(`quantizer_${branch}: input ${shapeStr(x.shape)} does not match code_shape [${q.codeShape}] and embed_dim ${q.embedDim}`);
  const which = branch === 'pix' ? 'pixel' : 'semantic';
  prog.checkFinite(x, (found) => `non-finite values entering the ${which} quantizer (stage quant_${branch}): ${describeNonFinite(found)}`);
  const r = rqSearch(prog, x, searchCodebook(w, cfg, branch), D, `quantizer_${branch}`);
  const codes = r.codes.view([B, h, wd, D]);
  const margin = r.margin.view([B, h, wd, D]);
  prog.tap(`code_${branch}`, codes);
  prog.tap(`margin_${branch}`, margin);
  const zq = rqEmbed(prog, codes, w.get(codebookName(branch), [q.nEmbed + 1, E]), `quantizer_${branch}.z_q`).view([B, L, E]);
  return { codes, zq };
}

/** The image path of RQVAESiglipModel.encode_image.  pixel_values [B, 3, S, S] -> codes, features, embedding */
export function encodeImage(prog: Program, w: Weights, cfg: DualTokenConfig, pixels: Tensor): EncoderOutput {
  const v = cfg.vision;
  let x = siglipEmbeddings(prog, w, v, pixels); // [B, L, C]
  prog.tap('hidden_states.0', x);
  let shortcut: Tensor | undefined; // [B, L, E]
  let pixIn: Tensor | undefined; // [B, L, E]
  let out: Omit<EncoderOutput, 'poolerOutput'> | undefined;
  for (let i = 1; i <= v.numLayers; i++) {
    const y = siglipEncoderLayer(prog, w, v, i - 1, x); // [B, L, C]
    x = y;
    prog.tap(`hidden_states.${i}`, x);
    if (i === cfg.layerRecon) {
      pixIn = attnProjection(prog, w, 'prequant_pix', x, projectionHeads(cfg, 'pix'));
      prog.tap('prequant_pix_raw', pixIn);
    }
    if (i === cfg.layerShortcut) {
      shortcut = attnProjection(prog, w, 'prequant_shortcut', x, projectionHeads(cfg, 'pix'));
      prog.tap('prequant_shortcut', shortcut);
    }
    if (i === cfg.layerSem) {
      // Pixel branch: prequant_pix (+ weight_shortcut * prequant_shortcut), quantized.
      if (!pixIn) throw new Error(`layer_recon ${cfg.layerRecon} comes after layer_sem ${cfg.layerSem}`);
      if (shortcut) {
        const sum = addScaled(prog, pixIn, shortcut, cfg.weightShortcut, 'prequant_pix');
        pixIn = sum;
      }
      prog.tap('prequant_pix', pixIn);
      const pix = quantize(prog, w, cfg, 'pix', pixIn);
      prog.tap('z_q_pix', pix.zq);
      // Semantic branch: its postquant_sem output replaces the hidden state.
      const semIn = attnProjection(prog, w, 'prequant_sem', x, projectionHeads(cfg, 'sem')); // [B, L, E]
      prog.tap('prequant_sem', semIn);
      const sem = quantize(prog, w, cfg, 'sem', semIn);
      prog.tap('z_q_sem_raw', sem.zq);
      const zqSem = attnProjection(prog, w, 'postquant_sem', sem.zq, projectionHeads(cfg, 'sem')); // [B, L, C]
      prog.tap('z_q_sem', zqSem);
      out = { codePix: pix.codes, codeSem: sem.codes, zqPix: pix.zq, zqSem };
      for (const t of Object.values(out)) t.pinned = true; // outputs: read after the run, never shared
      x = zqSem;
    }
  }
  if (!out) throw new Error(`layer_sem ${cfg.layerSem} is not a layer of the ${v.numLayers}-layer tower`);
  prog.tap('last_hidden_state', x);
  const post = siglipPostLayerNorm(prog, w, v, x); // [B, L, C]
  prog.tap('post_layernorm', post);
  const poolerOutput = siglipHead(prog, w, v, post); // [B, C]
  poolerOutput.pinned = true;
  prog.tap('pooler_output', poolerOutput);
  return { ...out, poolerOutput };
}

/** postquant_pix (causal AttnProjection E -> C): the decoder's input features.  z_q [B, L, E] -> [B, L, C] */
export function postquantPix(prog: Program, w: Weights, cfg: DualTokenConfig, zq: Tensor): Tensor {
  const y = attnProjection(prog, w, 'postquant_pix', zq, projectionHeads(cfg, 'pix'));
  prog.tap('postquant_pix', y);
  return y;
}

/**
 * Decoding from codes: z_q = sum_d codebook[c[d]] (RQBottleneck.embed_code).  codes [B, h, w, D]
 * i32 -> [B, L, E]. Codes are not checked here (the kernel clamps them): validate on the host.
 */
export function embedCodes(prog: Program, w: Weights, cfg: DualTokenConfig, codes: Tensor, branch: Branch = 'pix'): Tensor {
  const q = quantizer(cfg, branch);
  const [h, wd, D] = q.codeShape;
  const B = codes.shape[0];
  if (codes.shape.length !== 4 || codes.shape[1] !== h || codes.shape[2] !== wd || codes.shape[3] !== D) {
    throw new Error(`quantizer_${branch}: codes ${shapeStr(codes.shape)} do not match [B, ${h}, ${wd}, ${D}]`);
  }
  const zq = rqEmbed(prog, codes, w.get(codebookName(branch), [q.nEmbed + 1, q.embedDim]), `quantizer_${branch}.embed`); // [B, h, w, E]
  return zq.view([B, h * wd, q.embedDim]);
}
