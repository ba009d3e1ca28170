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
