// The released DualToken configurations (`config.json` of the official checkpoints), for
// benchmarks and synthetic runs without a checkpoint. The backbone sizes come from the presets
// in src/core/config.ts.

/** model_config_siglip_384_rvq8: SigLIP2 so400m/14 at 384 px, 27x27x8 codes of 16384 x 32. */
export const SIGLIP_384_RVQ8 = {
  rqvaesiglip: {
    pretrained_model: 'google/siglip2-so400m-patch14-384',
    layer_shortcut: 4,
    layer_recon: 6,
    layer_sem: 26,
    weight_shortcut: 0.6,
    hidden_size: 1152,
    decoder_latent_shape: [24, 24],
    ddconfig: { attn_resolutions: [24], ch: 128, ch_mult: [1, 1, 4, 4, 8], decoder_in_channels: 1024, double_z: false, dropout: 0.0, in_channels: 3, num_res_blocks: 2, out_ch: 3, resolution: 384 },
    vq_sem: { bottleneck_type: 'rq_ema', code_shape: [27, 27, 8], embed_dim: 32, latent_shape: [27, 27, 32], n_embed: 16384, shared_codebook: true },
    vq_pix: { bottleneck_type: 'rq', code_shape: [27, 27, 8], embed_dim: 32, latent_shape: [27, 27, 32], n_embed: 16384, shared_codebook: true },
  },
};

export const OFFICIAL_CONFIGS: Record<string, Record<string, unknown>> = { 'siglip_384_rvq8': SIGLIP_384_RVQ8 };

/**
 * The text_config of google/siglip2-so400m-patch14-384 (the backbone of SIGLIP_384_RVQ8), as
 * its siglip_config.json gives it (HF SiglipTextConfig fields; Gemma tokenizer: pad 0, eos 1,
 * bos 2). The preset config.json carries none (text needs siglip_config.json beside a real
 * checkpoint); synthetic text benchmarks take it from here.
 */
export const SIGLIP2_SO400M_TEXT_CONFIG = {
  model_type: 'siglip_text_model',
  vocab_size: 256000,
  hidden_size: 1152,
  intermediate_size: 4304,
  num_hidden_layers: 27,
  num_attention_heads: 16,
  max_position_embeddings: 64,
  hidden_act: 'gelu_pytorch_tanh',
  layer_norm_eps: 1e-6,
  projection_size: 1152,
  pad_token_id: 0,
  eos_token_id: 1,
  bos_token_id: 2,
};

/** The text_config of each preset's backbone, by preset name. */
export const OFFICIAL_TEXT_CONFIGS: Record<string, Record<string, unknown>> = { 'siglip_384_rvq8': SIGLIP2_SO400M_TEXT_CONFIG };
