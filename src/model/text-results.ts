// The results of the text side (text embeddings, zero-shot classification; text-model.ts, which
// re-exports them) and the host math that makes them from the tower's and the image's embeddings.

export interface TextEncodeResult {
  /** T, the number of prompts. */
  count: number;
  /** C, the embedding width (the text hidden_size). */
  dim: number;
  /** int32 [T, L]: the ids that ran (L = max_position_embeddings). */
  inputIds: Int32Array;
  /** f32 [T, C]: text_embeds_raw / ||text_embeds_raw||2. */
  textEmbeds: Float32Array;
  /** f32 [T, C]: the head's output, = official encode_text(input_ids). */
  textEmbedsRaw: Float32Array;
}

export interface ClassifyResult {
  /** B images. */
  batch: number;
  /** T texts. */
  count: number;
  /** f32 [B, T]: (image_embeds @ text_embeds^T) * exp(logit_scale) + logit_bias. */
  logitsPerImage: Float32Array;
  /** f32 [B, T]: sigmoid(logitsPerImage), per pair. */
  probs: Float32Array;
  /** f32 [B, C]: the normalised image embeddings. */
  imageEmbeds: Float32Array;
  /** f32 [T, C]: the normalised text embeddings. */
  textEmbeds: Float32Array;
  /** int32 [T, L]. */
  inputIds: Int32Array;
  /** exp(logit_scale), the multiplier used (f32). */
  logitScale: number;
  logitBias: number;
}

/** Texts to embed: ids [T, L] (row-major), or strings through the tokenizer. */
export type TextInput = { inputIds: Int32Array; count: number } | string[];

/** x / ||x||2 per row of [rows, C] (a true division, no epsilon, as the official code). */
export function normalizeRows(x: Float32Array, C: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / C; r++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[r * C + c] * x[r * C + c];
    const n = Math.fround(Math.sqrt(s));
    for (let c = 0; c < C; c++) out[r * C + c] = x[r * C + c] / n;
  }
  return out;
}

/**
 * logits_per_image [B, T] = (image_embeds @ text_embeds^T) * scale + bias, probs = sigmoid
 * (image_embeds [B, C], text_embeds [T, C], both normalised; `scale` = exp(logit_scale)).
 */
export function sigmoidLogits(imageEmbeds: Float32Array, textEmbeds: Float32Array, C: number, scale: number, bias: number): { logits: Float32Array; probs: Float32Array } {
  const B = imageEmbeds.length / C;
  const T = textEmbeds.length / C;
  const logits = new Float32Array(B * T);
  const probs = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      let d = 0;
      for (let c = 0; c < C; c++) d += imageEmbeds[b * C + c] * textEmbeds[t * C + c];
      // Two f32 ops, as torch: (text @ image.T) * exp(scale), then + bias.
      const l = Math.fround(Math.fround(Math.fround(d) * scale) + bias);
      logits[b * T + t] = l;
      probs[b * T + t] = 1 / (1 + Math.exp(-l));
    }
  }
  return { logits, probs };
}
