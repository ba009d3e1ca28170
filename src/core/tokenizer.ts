// Text -> fixed-length ids for the SigLIP text tower, through `@huggingface/tokenizers` (pure JS,
// browser-safe) reading a HF `tokenizer.json`. What the SigLIP / SigLIP2 processors do, as
// implemented here (each a documented option):
// - lowercase (default true): SigLIP2 was trained on lowercased text (its processor / the
//   Siglip2Tokenizer wrapper lowercases; SigLIP 1's SiglipTokenizer has do_lower_case too). Done
//   with String.prototype.toLowerCase before tokenizing.
// - the tokenizer.json's own normalizer, pre-tokenizer, model and post-processor (special tokens
//   the post-processor adds, e.g. a BOS and/or EOS, are kept: add_special_tokens = true as in HF),
// - truncation to L = max_position_embeddings: the content is cut so that the special tokens
//   still fit (HF `truncation=True, max_length=L` for a single sequence),
// - padding on the right to exactly L with the pad id (`padding="max_length"`): the config's
//   pad_token_id when given, else the tokenizer's `<pad>` token.
// SigLIP 1's punctuation stripping (SiglipTokenizer.canonicalize_text) is NOT done.
import { Tokenizer } from '@huggingface/tokenizers';

/** Turns prompts into ids [T, L] (row-major), L = the model's max_position_embeddings. */
export interface TextTokenizer {
  readonly length: number;
  encode(texts: string[]): Int32Array;
}

export interface TokenizerOptions {
  /** L: every prompt becomes exactly this many ids. */
  length: number;
  /** The pad id (default: the id of the tokenizer's `<pad>` token). */
  padId?: number | null;
  /** Lowercase the text first (default true, as SigLIP2 was trained). */
  lowercase?: boolean;
  /** Keep the special tokens the tokenizer.json's post-processor adds (default true). */
  addSpecialTokens?: boolean;
  /** What the tokenizer came from, for messages. */
  label?: string;
}

export class HfTextTokenizer implements TextTokenizer {
  readonly length: number;
  readonly padId: number;
  private readonly tok: Tokenizer;
  private readonly prefix: number[];
  private readonly suffix: number[];

  constructor(
    private readonly json: object,
    private readonly opts: TokenizerOptions,
    tokenizerConfig: object = {},
  ) {
    const label = opts.label ?? 'tokenizer.json';
    this.length = opts.length;
    if (!(Number.isInteger(this.length) && this.length >= 1)) throw new Error(`${label}: length ${this.length} must be a positive integer`);
    try {
      this.tok = new Tokenizer(json, tokenizerConfig);
    } catch (e) {
      throw new Error(`${label}: cannot build the tokenizer (${(e as Error).message})`);
    }
    const pad = opts.padId ?? this.tokenId('<pad>');
    if (pad === undefined || pad === null) throw new Error(`${label}: no pad id (the config has no pad_token_id and the tokenizer no '<pad>' token)`);
    this.padId = pad;
    // The special tokens the post-processor puts around the content: compare with and without.
    if (opts.addSpecialTokens ?? true) {
      const bare: number[] = this.tok.encode('a', { add_special_tokens: false }).ids;
      const full: number[] = this.tok.encode('a', { add_special_tokens: true }).ids;
      const at = full.findIndex((_, i) => bare.every((b, j) => full[i + j] === b));
      this.prefix = at < 0 ? [] : full.slice(0, at);
      this.suffix = at < 0 ? [] : full.slice(at + bare.length);
    } else {
      this.prefix = [];
      this.suffix = [];
    }
    if (this.prefix.length + this.suffix.length > this.length) throw new Error(`${label}: ${this.prefix.length + this.suffix.length} special tokens do not fit in ${this.length} positions`);
  }

  /** The id of a token string (an added / special token or a vocabulary entry), if any. */
  tokenId(token: string): number | undefined {
    return tokenIdIn(this.json, token);
  }

  /** The content ids of one text (lowercased unless disabled), before truncation and padding. */
  contentIds(text: string): number[] {
    const t = (this.opts.lowercase ?? true) ? text.toLowerCase() : text;
    return this.tok.encode(t, { add_special_tokens: false }).ids;
  }

  /** One text -> exactly `length` ids: [prefix specials, content (truncated), suffix specials, pads]. */
  encodeOne(text: string): number[] {
    const room = this.length - this.prefix.length - this.suffix.length;
    const ids = [...this.prefix, ...this.contentIds(text).slice(0, room), ...this.suffix];
    while (ids.length < this.length) ids.push(this.padId);
    return ids;
  }

  encode(texts: string[]): Int32Array {
    const out = new Int32Array(texts.length * this.length);
    texts.forEach((t, i) => out.set(this.encodeOne(t), i * this.length));
    return out;
  }
}

/** A token's id from tokenizer.json: its `added_tokens`, else the model's vocab (a BPE / WordPiece map, or a Unigram list of [piece, score]). */
export function tokenIdIn(json: object, token: string): number | undefined {
  const j = json as { added_tokens?: { id: number; content: string }[]; model?: { vocab?: Record<string, number> | [string, number][] } };
  const added = j.added_tokens?.find((t) => t.content === token);
  if (added) return added.id;
  const vocab = j.model?.vocab;
  if (Array.isArray(vocab)) {
    const i = vocab.findIndex((v) => v[0] === token);
    return i < 0 ? undefined : i;
  }
  const id = vocab?.[token];
  return typeof id === 'number' ? id : undefined;
}
