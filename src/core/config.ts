// Model configuration: the official DualToken config.json (its `rqvaesiglip` block) plus the
// backbone's HF SiglipConfig (`siglip_config.json`), or a built-in preset for the backbones the
// official configs name when that file is absent. Every size in the engine comes from here.

export interface VisionConfig {
  hiddenSize: number; // C
  intermediateSize: number; // MLP width
  numLayers: number;
  numHeads: number;
  numChannels: number;
  imageSize: number; // S
  patchSize: number; // P
  layerNormEps: number;
}

export interface QuantizerConfig {
  embedDim: number; // E
  nEmbed: number; // codebook rows used in the search (the weight has nEmbed + 1 rows)
  depth: number; // D = code_shape[2]
  codeShape: [number, number, number]; // [h, w, D]
}

export interface DecoderConfig {
  ch: number;
  chMult: number[];
  numResBlocks: number;
  attnResolutions: number[];
  inChannels: number; // decoder_in_channels (post_quant_conv output)
  outCh: number;
  resolution: number;
  latentShape: [number, number]; // decoder_latent_shape [h, w]
}

/** The SigLIP text tower (HF SiglipTextConfig), used for zero-shot classification. */
export interface TextConfig {
  hiddenSize: number; // C (also the text embedding width: the head is Linear(C, C))
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  vocabSize: number;
  /** L: prompts are padded / truncated to exactly this many ids. */
  maxPositionEmbeddings: number;
  layerNormEps: number;
  /** Only a tokenizer uses these (the model never looks at ids). */
  padTokenId: number | null;
  bosTokenId: number | null;
  eosTokenId: number | null;
}

export interface DualTokenConfig {
  vision: VisionConfig;
  /** The text tower, when siglip_config.json has a text_config (the presets have none). */
  text?: TextConfig;
  /** 1-based encoder layer numbers; layerShortcut null = no shortcut. */
  layerShortcut: number | null;
  layerRecon: number;
  layerSem: number;
  weightShortcut: number;
  quantPix: QuantizerConfig;
  quantSem: QuantizerConfig;
  decoder: DecoderConfig;
  /** The backbone the config names (`rqvaesiglip.pretrained_model`). */
  backbone: string;
}

/** Vision sizes of the backbones the official DualToken configs name. */
export const BACKBONE_PRESETS: Record<string, VisionConfig> = {
  'siglip2-so400m-patch14-384': { hiddenSize: 1152, intermediateSize: 4304, numLayers: 27, numHeads: 16, numChannels: 3, imageSize: 384, patchSize: 14, layerNormEps: 1e-6 },
  'siglip2-so400m-patch16-256': { hiddenSize: 1152, intermediateSize: 4304, numLayers: 27, numHeads: 16, numChannels: 3, imageSize: 256, patchSize: 16, layerNormEps: 1e-6 },
  'siglip-so400m-patch14-384': { hiddenSize: 1152, intermediateSize: 4304, numLayers: 27, numHeads: 16, numChannels: 3, imageSize: 384, patchSize: 14, layerNormEps: 1e-6 },
};

type Json = Record<string, unknown>;

function field<T>(obj: Json, key: string, where: string, check: (v: unknown) => boolean, what: string): T {
  const v = obj[key];
  if (!check(v)) throw new Error(`${where}: '${key}' must be ${what} (got ${JSON.stringify(v)})`);
  return v as T;
}
const isPosInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const isIntList = (v: unknown) => Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0);

/** Which preset a backbone name refers to (an HF id such as `google/siglip2-so400m-patch14-384`). */
export function findPreset(name: string): VisionConfig | undefined {
  const base = name.replace(/\/+$/, '').split('/').pop() ?? '';
  return BACKBONE_PRESETS[base];
}

export function parseVisionConfig(siglip: Json, where: string): VisionConfig {
  const v = (siglip.vision_config ?? siglip) as Json;
  const w = `${where} vision_config`;
  const act = v.hidden_act ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh') throw new Error(`${w}: hidden_act '${act}' is not supported (only gelu_pytorch_tanh)`);
  const cfg: VisionConfig = {
    hiddenSize: field(v, 'hidden_size', w, isPosInt, 'a positive integer'),
    intermediateSize: field(v, 'intermediate_size', w, isPosInt, 'a positive integer'),
    numLayers: field(v, 'num_hidden_layers', w, isPosInt, 'a positive integer'),
    numHeads: field(v, 'num_attention_heads', w, isPosInt, 'a positive integer'),
    numChannels: (v.num_channels as number) ?? 3,
    imageSize: field(v, 'image_size', w, isPosInt, 'a positive integer'),
    patchSize: field(v, 'patch_size', w, isPosInt, 'a positive integer'),
    layerNormEps: v.layer_norm_eps === undefined ? 1e-6 : field(v, 'layer_norm_eps', w, (x) => isNum(x) && (x as number) > 0, 'a finite number > 0'),
  };
  if (cfg.hiddenSize % cfg.numHeads) throw new Error(`${w}: hidden_size ${cfg.hiddenSize} is not divisible by num_attention_heads ${cfg.numHeads}`);
  return cfg;
}

/** HF SiglipTextConfig (`text_config` of a SiglipConfig). */
export function parseTextConfig(t: Json, where: string): TextConfig {
  const w = `${where} text_config`;
  const act = t.hidden_act ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh') throw new Error(`${w}: hidden_act '${act}' is not supported (only gelu_pytorch_tanh)`);
  const id = (k: string) => (t[k] === undefined || t[k] === null ? null : field<number>(t, k, w, (v) => Number.isInteger(v) && (v as number) >= 0, 'an integer >= 0'));
  const cfg: TextConfig = {
    hiddenSize: field(t, 'hidden_size', w, isPosInt, 'a positive integer'),
    intermediateSize: field(t, 'intermediate_size', w, isPosInt, 'a positive integer'),
    numLayers: field(t, 'num_hidden_layers', w, isPosInt, 'a positive integer'),
    numHeads: field(t, 'num_attention_heads', w, isPosInt, 'a positive integer'),
    vocabSize: field(t, 'vocab_size', w, isPosInt, 'a positive integer'),
    maxPositionEmbeddings: field(t, 'max_position_embeddings', w, isPosInt, 'a positive integer'),
    layerNormEps: t.layer_norm_eps === undefined ? 1e-6 : field(t, 'layer_norm_eps', w, (x) => isNum(x) && (x as number) > 0, 'a finite number > 0'),
    padTokenId: id('pad_token_id'),
    bosTokenId: id('bos_token_id'),
    eosTokenId: id('eos_token_id'),
  };
  if (cfg.hiddenSize % cfg.numHeads) throw new Error(`${w}: hidden_size ${cfg.hiddenSize} is not divisible by num_attention_heads ${cfg.numHeads}`);
  return cfg;
}

function parseQuantizer(q: Json, where: string): QuantizerConfig {
  const codeShape = field<number[]>(q, 'code_shape', where, (v) => isIntList(v) && (v as number[]).length === 3, 'a list [h, w, depth]');
  // The engine searches one codebook at every depth (the released models share it).
  if (q.shared_codebook === false) throw new Error(`${where}: shared_codebook false (one codebook per depth) is not supported`);
  const latent = q.latent_shape as number[] | undefined;
  if (latent !== undefined && (!isIntList(latent) || latent[0] !== codeShape[0] || latent[1] !== codeShape[1] || latent[2] !== q.embed_dim)) {
    throw new Error(`${where}: latent_shape ${JSON.stringify(latent)} must be [h, w, embed_dim] with the h, w of code_shape [${codeShape}]`);
  }
  return {
    embedDim: field(q, 'embed_dim', where, isPosInt, 'a positive integer'),
    nEmbed: field(q, 'n_embed', where, isPosInt, 'a positive integer'),
    depth: codeShape[2],
    codeShape: codeShape as [number, number, number],
  };
}

function parseDecoder(r: Json, where: string): DecoderConfig {
  const dd = field<Json>(r, 'ddconfig', where, (v) => typeof v === 'object' && v !== null, 'an object');
  const w = `${where} ddconfig`;
  const latent = field<number[]>(r, 'decoder_latent_shape', where, (v) => isIntList(v) && (v as number[]).length === 2, 'a list [h, w]');
  return {
    ch: field(dd, 'ch', w, isPosInt, 'a positive integer'),
    chMult: field(dd, 'ch_mult', w, (v) => isIntList(v) && (v as number[]).length > 0, 'a list of integers'),
    numResBlocks: field(dd, 'num_res_blocks', w, isPosInt, 'a positive integer'),
    attnResolutions: field(dd, 'attn_resolutions', w, isIntList, 'a list of integers'),
    inChannels: field(dd, 'decoder_in_channels', w, isPosInt, 'a positive integer'),
    outCh: field(dd, 'out_ch', w, isPosInt, 'a positive integer'),
    resolution: field(dd, 'resolution', w, isPosInt, 'a positive integer'),
    latentShape: latent as [number, number],
  };
}

/**
 * Parses the official config. `siglip` is the backbone's SiglipConfig JSON when the caller has
 * it; otherwise the backbone named by `rqvaesiglip.pretrained_model` must be a known preset.
 */
export function parseConfig(config: Json, siglip: Json | undefined, where = 'config.json'): DualTokenConfig {
  const r = (config.rqvaesiglip ?? config) as Json;
  if (typeof r !== 'object' || r === null) throw new Error(`${where}: no 'rqvaesiglip' block`);
  const backbone = typeof r.pretrained_model === 'string' ? r.pretrained_model : '';
  let vision: VisionConfig;
  if (siglip) vision = parseVisionConfig(siglip, 'siglip_config.json');
  else {
    const preset = findPreset(backbone);
    if (!preset) {
      throw new Error(`${where}: backbone '${backbone}' is not a built-in preset (${Object.keys(BACKBONE_PRESETS).join(', ')}); put its siglip_config.json beside config.json`);
    }
    vision = preset;
  }
  const layer = (k: string) => field<number>(r, k, where, (v) => isPosInt(v) && (v as number) <= vision.numLayers, `a layer number in 1..${vision.numLayers}`);
  const cfg: DualTokenConfig = {
    vision,
    layerShortcut: r.layer_shortcut === null || r.layer_shortcut === undefined ? null : layer('layer_shortcut'),
    layerRecon: layer('layer_recon'),
    layerSem: layer('layer_sem'),
    weightShortcut: r.layer_shortcut == null ? 0 : field(r, 'weight_shortcut', where, isNum, 'a number'),
    quantPix: parseQuantizer(field(r, 'vq_pix', where, (v) => typeof v === 'object' && v !== null, 'an object'), `${where} vq_pix`),
    quantSem: parseQuantizer(field(r, 'vq_sem', where, (v) => typeof v === 'object' && v !== null, 'an object'), `${where} vq_sem`),
    decoder: parseDecoder(r, where),
    backbone,
  };
  const textJson = siglip?.text_config;
  if (textJson !== undefined && textJson !== null) {
    if (typeof textJson !== 'object') throw new Error(`siglip_config.json: 'text_config' must be an object`);
    cfg.text = parseTextConfig(textJson as Json, 'siglip_config.json');
  }
  const grid = Math.floor(vision.imageSize / vision.patchSize);
  for (const [q, name] of [[cfg.quantPix, 'vq_pix'], [cfg.quantSem, 'vq_sem']] as const) {
    if (q.codeShape[0] !== grid || q.codeShape[1] !== grid) {
      throw new Error(`${where} ${name}: code_shape [${q.codeShape}] does not match the ${grid}x${grid} token grid of image_size ${vision.imageSize} / patch ${vision.patchSize}`);
    }
  }
  if (cfg.layerRecon > cfg.layerSem || (cfg.layerShortcut !== null && cfg.layerShortcut > cfg.layerSem)) {
    throw new Error(`${where}: layer_recon and layer_shortcut must not come after layer_sem`);
  }
  return cfg;
}

/** Tokens per side of the patch grid. */
export function gridSize(v: VisionConfig): number {
  return Math.floor(v.imageSize / v.patchSize);
}
