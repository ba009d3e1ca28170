// The language side of DualToken: the SigLIP text tower (text.ts) on the engine's kernels,
// text embeddings and zero-shot classification against DualToken's image embedding (the MAP
// head's output of the quantized path, normalised), exactly as the golden README's "Text tower"
// section states:
//   text_embeds = raw / ||raw||2, image_embeds = pooler_output / ||pooler_output||2 (true
//   divisions), logits_per_image [B, T] = (image_embeds @ text_embeds^T) * exp(logit_scale) +
//   logit_bias (logit_scale is stored as a log), probs = sigmoid(logits): one independent sigmoid
//   per (image, text) pair, not a softmax over the texts.
// Nothing of the text side is read or uploaded until it is first used (the first encodeText or
// classify): image-only users pay nothing. The token embedding table (256000 x 1152 at the real
// size, 1.18 GB in f32, over any binding) never goes to the GPU: the rows of the ids used are
// read from the weights (a range read per row where the source has one: safetensors, sharded
// safetensors; else the table is read once and kept on the host: a PyTorch .pt), gathered on the
// CPU (token-rows.ts) and uploaded as the program's input [T, L, C]. Under precision 'f16' the
// linear weights are packed to halves as they load (text-weights.ts).
import type { DualTokenConfig, TextConfig } from '../core/config.js';
import type { Gpu } from '../core/gpu.js';
import type { KernelLibrary } from '../core/kernels.js';
import { Program } from '../core/program.js';
import { Tensor } from '../core/tensor.js';
import type { TensorSource } from '../core/tensor-source.js';
import type { TextTokenizer } from '../core/tokenizer.js';
import { variantsOf } from '../ops/choice.js';
import type { Weights } from '../core/weights.js';
import { textTower, type TextVariant } from './text.js';
import { normalizeRows, sigmoidLogits, type ClassifyResult, type TextEncodeResult, type TextInput } from './text-results.js';
import { loadTextWeights, readLogitParams, type LogitParams } from './text-weights.js';
import { TokenRows } from './token-rows.js';

export { normalizeRows, sigmoidLogits, type ClassifyResult, type TextEncodeResult, type TextInput } from './text-results.js';

/** Prompts per recorded run: longer lists run in chunks of this many (bounded activations). */
export const TEXT_CHUNK = 32;
/** Label sets whose text embeddings classify keeps. */
const CACHED_LABEL_SETS = 16;

export interface TextTowerHost {
  gpu: Gpu;
  kernels: KernelLibrary;
  config: DualTokenConfig;
  /** The weights, opened at first use; `owned`: closed by dispose(). */
  openSource: () => Promise<{ source: TensorSource; owned: boolean }>;
  keepTaps?: boolean;
  allowNonFinite?: boolean;
  onNewProgram?: (prog: Program) => void;
  /** A function is called at the first string (a tokenizer.json can take a second to build). */
  tokenizer?: TextTokenizer | (() => TextTokenizer);
}

interface TextProgram {
  prog: Program;
  input: Tensor;
  output: Tensor;
}

/** The text tower of a DualToken model (created by DualToken.text(), or directly with a host). */
export class TextTower {
  readonly cfg: TextConfig;
  private weights?: Weights;
  private loading?: Promise<void>;
  private source?: TensorSource;
  private ownsSource = false;
  private logit?: LogitParams;
  private readonly tokenRows: TokenRows;
  private readonly programs = new Map<string, TextProgram>();
  private readonly cache = new Map<string, { raw: Float32Array; embeds: Float32Array }>();
  private inFlight = 0;
  private peak = 0;
  private disposed = false;
  private tokenizerOrMaker?: TextTokenizer | (() => TextTokenizer);

  constructor(private readonly host: TextTowerHost) {
    const t = host.config.text;
    if (!t) throw new Error('text tower: the model config has no text_config (put the backbone\'s siglip_config.json, with its text_config, beside config.json)');
    this.cfg = t;
    this.tokenRows = new TokenRows(t.hiddenSize, host.allowNonFinite ?? false);
    this.tokenizerOrMaker = host.tokenizer;
  }

  /** The tokenizer strings go through (built now if it was given as a function), if any. */
  get tokenizer(): TextTokenizer | undefined {
    if (typeof this.tokenizerOrMaker === 'function') this.tokenizerOrMaker = this.tokenizerOrMaker();
    return this.tokenizerOrMaker;
  }

  set tokenizer(t: TextTokenizer | undefined) {
    this.tokenizerOrMaker = t;
  }

  /** L: every prompt is exactly this many ids. */
  get length(): number {
    return this.cfg.maxPositionEmbeddings;
  }

  /** Loads the text weights (once; the first encode does it). */
  load(): Promise<void> {
    this.loading ??= this.loadNow().catch((e) => {
      this.loading = undefined;
      throw e;
    });
    return this.loading;
  }

  private async loadNow(): Promise<void> {
    const { source, owned } = await this.host.openSource();
    this.source = source;
    this.ownsSource = owned;
    this.weights = await loadTextWeights(this.host, this.cfg, source, (bytes) => this.notePeak(bytes));
    this.notePeak(this.byteLength);
    this.logit = await readLogitParams(source);
  }

  private notePeak(bytes: number): void {
    this.peak = Math.max(this.peak, bytes);
  }

  /**
   * The largest GPU memory the text side held (byteLength), sampled after each tensor's upload
   * (and packing) at load, after loading and after each run.
   */
  get peakByteLength(): number {
    return Math.max(this.peak, this.byteLength);
  }

  /** exp(logit_scale) (f32) and logit_bias. */
  logitParams(): { scale: number; bias: number } {
    const { scaleLog, bias, error } = this.logit ?? {};
    if (error || scaleLog === undefined || bias === undefined) throw new Error(error ?? 'text tower: not loaded');
    return { scale: Math.fround(Math.exp(scaleLog)), bias };
  }

  /** Strings -> ids [T, L] through the tokenizer. */
  tokenize(texts: string[]): Int32Array {
    const tok = this.tokenizer;
    if (!tok) throw new Error('text tower: strings need a tokenizer (tokenizer.json beside the weights, or pass one)');
    if (tok.length !== this.length) throw new Error(`text tower: the tokenizer makes ${tok.length} ids per prompt, the model takes max_position_embeddings = ${this.length}`);
    return tok.encode(texts);
  }

  private ids(input: TextInput): { ids: Int32Array; T: number } {
    if (Array.isArray(input)) return { ids: this.tokenize(input), T: input.length };
    return { ids: input.inputIds, T: input.count };
  }

  private check(ids: Int32Array, T: number): void {
    const L = this.length;
    if (!(Number.isInteger(T) && T >= 1)) throw new Error(`encodeText: ${T} prompts (needs at least 1)`);
    if (ids.length !== T * L) throw new Error(`encodeText: input_ids has ${ids.length} values, [${T},${L}] needs ${T * L} (prompts are padded to max_position_embeddings = ${L})`);
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < this.cfg.vocabSize)) throw new Error(`encodeText: input_ids[${Math.floor(i / L)},${i % L}] = ${ids[i]} is out of range for the ${this.cfg.vocabSize}-token vocabulary`);
    }
  }

  /** Text embeddings of T prompts (ids [T, L], or strings through the tokenizer); cached per id set. */
  async encode(input: TextInput): Promise<TextEncodeResult> {
    const { ids, T } = this.ids(input);
    this.check(ids, T);
    const C = this.cfg.hiddenSize;
    const key = Array.prototype.join.call(ids, ',');
    let hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
    } else {
      const raw = new Float32Array(T * C);
      for (let t0 = 0; t0 < T; t0 += TEXT_CHUNK) {
        const n = Math.min(TEXT_CHUNK, T - t0);
        const { raw: part } = await this.run(ids.subarray(t0 * this.length, (t0 + n) * this.length), n);
        raw.set(part, t0 * C);
      }
      hit = { raw, embeds: normalizeRows(raw, C) };
      this.cache.set(key, hit);
      while (this.cache.size > CACHED_LABEL_SETS) this.cache.delete(this.cache.keys().next().value as string);
    }
    return { count: T, dim: C, inputIds: new Int32Array(ids), textEmbeds: new Float32Array(hit.embeds), textEmbedsRaw: new Float32Array(hit.raw) };
  }

  /** Zero-shot classification of image embeddings (pooler_output [B, C], not yet normalised) against T texts. */
  async classifyEmbeddings(poolerOutput: Float32Array, batch: number, text: TextInput): Promise<ClassifyResult> {
    const te = await this.encode(text);
    const C = te.dim;
    if (poolerOutput.length !== batch * C) throw new Error(`classify: image embeddings have ${poolerOutput.length} values, [${batch},${C}] needs ${batch * C} (the vision and text widths must agree)`);
    const { scale, bias } = this.logitParams();
    const imageEmbeds = normalizeRows(poolerOutput, C);
    const { logits, probs } = sigmoidLogits(imageEmbeds, te.textEmbeds, C, scale, bias);
    return { batch, count: te.count, logitsPerImage: logits, probs, imageEmbeds, textEmbeds: te.textEmbeds, inputIds: te.inputIds, logitScale: scale, logitBias: bias };
  }

  /**
   * One run of the tower on T prompts (no chunking, no cache), reading back the named taps too
   * (with keepTaps). `variant` is for tests only (a deliberately wrong tower).
   */
  async run(ids: Int32Array, T: number, opts: { taps?: string[]; variant?: TextVariant } = {}): Promise<{ raw: Float32Array; taps: Map<string, Float32Array> }> {
    this.alive('encodeText');
    this.check(ids, T);
    this.inFlight++;
    try {
      await this.load();
      this.alive('encodeText');
      const tokens = await this.tokenRows.gather(this.source!, ids);
      const c = this.programFor(T, opts.variant ?? {});
      const tapped = (opts.taps ?? []).map((n) => c.prog.tapped(n));
      const out = await c.prog.run([c.output, ...tapped], () => {
        this.alive(c.prog.label);
        this.host.gpu.device.queue.writeBuffer(c.input.buffer, c.input.offset, tokens.buffer, tokens.byteOffset, tokens.byteLength);
      });
      this.notePeak(this.byteLength);
      const taps = new Map<string, Float32Array>();
      (opts.taps ?? []).forEach((n, i) => taps.set(n, new Float32Array(out[i + 1], 0, tapped[i].numel)));
      return { raw: new Float32Array(out[0], 0, T * this.cfg.hiddenSize), taps };
    } finally {
      this.inFlight--;
      if (this.disposed) this.freeIfIdle();
    }
  }

  /** The recorded program for T prompts (and a test variant), recorded on first use. */
  program(T: number, variant: TextVariant = {}): Program {
    return this.programFor(T, variant).prog;
  }

  private programFor(T: number, variant: TextVariant): TextProgram {
    if (!this.weights) throw new Error('text tower: weights not loaded (await load() first)');
    const key = `${T}|${variant.causal ? 'causal' : ''}|${variant.poolIndex ?? ''}`;
    const hit = this.programs.get(key);
    if (hit) {
      this.programs.delete(key);
      this.programs.set(key, hit);
      return hit;
    }
    const { maxPositionEmbeddings: L, hiddenSize: C } = this.cfg;
    const label = `text B=${T}${variant.causal ? ' causal' : ''}${variant.poolIndex !== undefined ? ` pool ${variant.poolIndex}` : ''}`;
    const prog = new Program(this.host.kernels, label, this.host.keepTaps ?? false);
    prog.onPacked = (w) => {
      if (variantsOf(this.host.kernels).singleWeightLayout()) this.weights!.releaseOriginal(w, this.boundBuffers(prog));
    };
    const bytes = T * L * C * 4;
    const buffer = this.host.gpu.device.createBuffer({ label: 'text_tokens', size: Math.ceil(bytes / 16) * 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    const input = new Tensor(buffer, [T, L, C], 'f32', 0, 'text_tokens');
    input.pinned = true;
    const output = textTower(prog, this.weights, this.cfg, input, variant);
    const c = { prog, input, output };
    this.programs.set(key, c);
    // Keep two recorded programs (least recently used first out), like DualToken's programsPerStage default.
    for (const [k, old] of [...this.programs.entries()].slice(0, -2)) {
      this.programs.delete(k);
      this.free(old);
    }
    if (variantsOf(this.host.kernels).singleWeightLayout()) this.weights.releasePackedOriginals(this.boundBuffers());
    this.host.onNewProgram?.(prog);
    return c;
  }

  private boundBuffers(extra?: Program): Set<GPUBuffer> {
    const bound = new Set<GPUBuffer>(extra?.boundBuffers());
    for (const c of this.programs.values()) for (const b of c.prog.boundBuffers()) bound.add(b);
    return bound;
  }

  private alive(what: string): void {
    if (this.disposed) throw new Error(`DualToken: the model was disposed (${what})`);
    this.host.gpu.check(what);
  }

  private free(c: TextProgram): void {
    c.prog.destroy();
    c.input.buffer.destroy();
  }

  /** GPU bytes held by the text side (weights, packed layouts, programs). */
  get byteLength(): number {
    let s = (this.weights?.byteLength ?? 0) + (this.weights?.packedByteLength ?? 0);
    for (const c of this.programs.values()) s += c.prog.allocatedBytes + c.input.buffer.size;
    return s;
  }

  /** Frees the text side's GPU memory once no call is running, and closes a source it opened. */
  dispose(): void {
    this.disposed = true;
    this.freeIfIdle();
  }

  private freeIfIdle(): void {
    if (this.inFlight > 0) return;
    for (const c of this.programs.values()) this.free(c);
    this.programs.clear();
    this.weights?.destroy();
    this.weights = undefined;
    this.tokenRows.clear();
    if (this.ownsSource) void this.source?.close?.();
    this.source = undefined;
  }
}
