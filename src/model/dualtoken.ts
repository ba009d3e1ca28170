// The public model: DualToken.encode (pixel_values -> pixel codes, semantic codes, semantic
// features, image embedding) and DualToken.decode (pixel codes -> image), each a Program
// recorded once per batch size and replayed. Calls may overlap in any mix: each writes its input
// at its program's turn (Program.run runs one at a time), a program with runs queued is never
// evicted, and dispose() frees the GPU memory once the calls in flight have finished (calls
// queued behind them, and later ones, are refused).
import type { DualTokenConfig } from '../core/config.js';
import { gridSize } from '../core/config.js';
import type { Gpu } from '../core/gpu.js';
import { autotune, loadTuned, type TuneStorage } from '../core/autotune.js';
import { KernelLibrary, type ShaderSources } from '../core/kernels.js';
import { variantsOf, type KernelChoice, type Precision } from '../core/variants.js';
import type { RgbImage } from '../core/image.js';
import { ImageBatch, preprocess, toRgb8, unpackRgb8 } from '../core/preprocess.js';
import { Program } from '../core/program.js';
import { Tensor } from '../core/tensor.js';
import type { TensorSource } from '../core/tensor-source.js';
import { Weights, type LoadProgress } from '../core/weights.js';
import { decodeFromFeatures, usedByDecoder } from './decoder.js';
import { embedCodes, encodeImage, postquantPix, prepareEncoderWeights, usedByEncoder, usedByPrepare } from './encoder.js';
import type { TextTokenizer } from '../core/tokenizer.js';
import { TextTower, type ClassifyResult, type TextEncodeResult, type TextInput } from './text-model.js';

export interface EncodeResult {
  batch: number;
  /** int32 [B, h, w, D] */
  pixelCodes: Int32Array;
  /** int32 [B, h, w, D] */
  semanticCodes: Int32Array;
  /** f32 [B, L, C]: postquant_sem output, the hidden state that re-enters the tower */
  semanticFeatures: Float32Array;
  /** f32 [B, C]: pooler_output of the MAP head (the language-aligned image embedding) */
  embedding: Float32Array;
}

export interface DecodeResult {
  batch: number;
  /** f32 [B, 3, R, R], about [-1, 1] (not clamped) */
  recon: Float32Array;
  shape: [number, number, number, number];
  /** 8-bit RGB: clamp((y + 1) * 127.5, 0, 255) truncated, as the official saver does. */
  images: RgbImage[];
}

export interface DualTokenOptions {
  /** Keep every named intermediate for read-back (debugging, golden tests). */
  keepTaps?: boolean;
  onProgress?: (p: LoadProgress) => void;
  /** Kernel variants by op, e.g. {linear: 'kn_sg'} (see src/core/variants.ts); wins over tuning. */
  kernels?: KernelChoice;
  /** 'f32' (default, faithful) or 'f16': weights stored as halves where a variant does so (see variants.Precision). */
  precision?: Precision;
  /**
   * Recorded programs kept per stage (encode, decode), one per batch size: beyond this many the
   * least recently used one (not running) is freed with its activations. Default 2.
   */
  programsPerStage?: number;
  /** Where autotune results live: a stored result for this adapter is used. */
  tuneStorage?: TuneStorage;
  /** Measure the variants on this adapter now (and store the result) instead of reusing one. */
  autotune?: boolean;
  log?: (line: string) => void;
  /**
   * Called when a program (a stage at a batch size) has been recorded, before its first run
   * compiles its pipelines: the Node entry uses it to say when a first run will be slow.
   */
  onNewProgram?: (prog: Program) => void;
  /**
   * Skip the load-time check that every weight is finite (for experiments). Non-finite values
   * reaching a quantizer or the reconstruction still fail the call, naming the stage.
   */
  allowNonFinite?: boolean;
  /**
   * Where the text tower's weights are read from at its first use (encodeText / classify): a
   * function (re)opening the weights, the source it returns closed by dispose(). Default: the
   * source given to create(), which must then still be open at that time.
   */
  textSource?: () => Promise<TensorSource>;
  /** Turns label strings into ids for encodeText / classify (see core/tokenizer.ts); a function is called at the first string. */
  tokenizer?: TextTokenizer | (() => TextTokenizer);
}

interface Compiled {
  prog: Program;
  input: Tensor;
  outputs: Tensor[];
  /** Calls queued or running on it: a program is never freed while it has any. */
  busy: number;
}

/** GPU memory of a model, in bytes. */
export interface GpuMemory {
  /** Weights as loaded that are still held (those read only through a packed layout are freed). */
  weights: number;
  /** The packed layouts the kernels read (transposed, or f16) made of the weights. */
  packed: number;
  /** Every recorded program's activations, inputs and uniforms. */
  programs: number;
  /** The largest total seen so far, measured at each packing (before its original is freed), after each recording and at each memory() call. */
  peak: number;
}

export class DualToken {
  private readonly encoders = new Map<number, Compiled>();
  private readonly decoders = new Map<number, Compiled>();
  private peakBytes = 0;
  /** Calls queued or running, on any program (dispose() frees the memory once none is left). */
  private inFlight = 0;
  private disposed = false;
  private textTower?: TextTower;
  private textOptions: Pick<DualTokenOptions, 'textSource' | 'tokenizer' | 'allowNonFinite'> & { source?: TensorSource } = {};

  private constructor(
    readonly gpu: Gpu,
    readonly config: DualTokenConfig,
    readonly weights: Weights,
    private readonly kernels: KernelLibrary,
    private readonly keepTaps: boolean,
    private readonly programsPerStage: number,
    private readonly onNewProgram?: (prog: Program) => void,
  ) {}

  /** Uploads the weights the encoder and decoder use; other tensors (text tower, EMA state) are skipped. */
  static async create(gpu: Gpu, shaders: ShaderSources, config: DualTokenConfig, source: TensorSource, opts: DualTokenOptions = {}): Promise<DualToken> {
    const kernels = new KernelLibrary(gpu, shaders);
    const weights = new Weights(gpu, source);
    const finite = opts.allowNonFinite ? undefined : kernels;
    try {
      await weights.load((n) => usedByEncoder(n, config) || usedByDecoder(n), opts.onProgress, (n) => usedByPrepare(n, config), finite);
      await prepareEncoderWeights(weights, config);
    } catch (e) {
      weights.destroy(); // a refused model holds no GPU memory
      throw e;
    }
    variantsOf(kernels).setPrecision(opts.precision ?? 'f32');
    if (opts.autotune) await autotune(kernels, { storage: opts.tuneStorage, force: true, log: opts.log });
    else if (opts.tuneStorage) await loadTuned(kernels, opts.tuneStorage);
    variantsOf(kernels).override(opts.kernels ?? {});
    const keep = opts.programsPerStage ?? 2;
    if (!(Number.isInteger(keep) && keep >= 1)) throw new Error(`programsPerStage ${keep}: needs an integer >= 1`);
    const model = new DualToken(gpu, config, weights, kernels, opts.keepTaps ?? false, keep, opts.onNewProgram);
    model.textOptions = { textSource: opts.textSource, tokenizer: opts.tokenizer, allowNonFinite: opts.allowNonFinite, source };
    return model;
  }

  /**
   * Where the text side reads its weights from (a function reopening them: the Node loader closes
   * the source after create) and its tokenizer; before the first text call only.
   */
  configureText(o: Pick<DualTokenOptions, 'textSource' | 'tokenizer'>): void {
    if (this.textTower) throw new Error('configureText: the text tower is already in use');
    if (o.textSource) this.textOptions.textSource = o.textSource;
    if (o.tokenizer) this.textOptions.tokenizer = o.tokenizer;
  }

  /** The text tower (text-model.ts), created at first use; its weights load at its first encode. */
  text(): TextTower {
    this.alive('text');
    const o = this.textOptions;
    this.textTower ??= new TextTower({
      gpu: this.gpu,
      kernels: this.kernels,
      config: this.config,
      openSource: async () => (o.textSource ? { source: await o.textSource(), owned: true } : { source: o.source!, owned: false }),
      keepTaps: this.keepTaps,
      allowNonFinite: o.allowNonFinite,
      onNewProgram: this.onNewProgram,
      tokenizer: o.tokenizer,
    });
    return this.textTower;
  }

  /** Text embeddings of T prompts: ids [T, L] (L = max_position_embeddings), or strings through the tokenizer. */
  encodeText(inputIds: Int32Array | string[], count?: number): Promise<TextEncodeResult> {
    const input: TextInput = Array.isArray(inputIds) ? inputIds : { inputIds, count: count ?? inputIds.length / this.text().length };
    return this.text().encode(input);
  }

  /**
   * Zero-shot classification: images (RgbImage[], or pixel_values with their batch size) against
   * T texts (ids or strings). logits_per_image = image_embeds @ text_embeds^T * exp(logit_scale)
   * + logit_bias, probs = sigmoid(logits) per pair; text embeddings cached per label set.
   */
  async classify(images: RgbImage[] | { pixelValues: Float32Array; batch: number }, texts: TextInput): Promise<ClassifyResult> {
    const enc = Array.isArray(images) ? await this.encodeImages(images) : await this.encode(images.pixelValues, images.batch);
    return this.text().classifyEmbeddings(enc.embedding, enc.batch, texts);
  }

  /** Which kernel variant each op records, and why (override, tuned or the adapter default). */
  kernelChoice(): Record<string, string> {
    return variantsOf(this.kernels).describe();
  }

  /** Tensors of the source that no output uses (listed by `info`). */
  static unusedTensors(source: TensorSource, config: DualTokenConfig): string[] {
    return source.names().filter((n) => !usedByEncoder(n, config) && !usedByDecoder(n));
  }

  get imageSize(): number {
    return this.config.vision.imageSize;
  }

  /** pixel_values f32 [B, 3, S, S] (normalised to [-1, 1]) -> codes, features, embedding. */
  async encode(pixelValues: Float32Array, batch: number): Promise<EncodeResult> {
    const v = this.config.vision;
    const S = v.imageSize;
    const expected = batch * v.numChannels * S * S;
    if (pixelValues.length !== expected) throw new Error(`encode: pixel_values has ${pixelValues.length} values, [${batch},${v.numChannels},${S},${S}] needs ${expected}`);
    const [pix, sem, feats, emb] = await this.running(this.encoderFor(batch), (c) => c.prog.run(c.outputs, this.atTurn(c, () => this.write(c.input, pixelValues))));
    return {
      batch,
      pixelCodes: new Int32Array(pix),
      semanticCodes: new Int32Array(sem),
      semanticFeatures: new Float32Array(feats),
      embedding: new Float32Array(emb),
    };
  }

  /**
   * Images of any size -> the same as encode(), with the official preprocessing (shortest-edge
   * antialiased bicubic resize, center crop, normalise) run on the GPU in the same submission.
   */
  async encodeImages(images: RgbImage[]): Promise<EncodeResult> {
    this.alive('encodeImages');
    const batch = await ImageBatch.upload(this.kernels, images, this.imageSize);
    const pre = new Program(this.kernels, `preprocess B=${images.length}`);
    try {
      const pixels = preprocess(pre, batch); // [B, 3, S, S]
      await pre.finalize();
      const [pix, sem, feats, emb] = await this.running(this.encoderFor(images.length), (c) =>
        c.prog.run(
          c.outputs,
          this.atTurn(c, (encoder) => {
            pre.encode(encoder);
            encoder.copyBufferToBuffer(pixels.buffer, pixels.offset, c.input.buffer, c.input.offset, pixels.byteLength);
          }),
        ),
      );
      return {
        batch: images.length,
        pixelCodes: new Int32Array(pix),
        semanticCodes: new Int32Array(sem),
        semanticFeatures: new Float32Array(feats),
        embedding: new Float32Array(emb),
      };
    } finally {
      pre.destroy();
      batch.destroy();
    }
  }

  /** Pixel codes int32 [B, h, w, D] -> image f32 [B, 3, R, R] and 8-bit RGB. Codes are checked against the codebook size. */
  async decode(pixelCodes: Int32Array, batch: number): Promise<DecodeResult> {
    const q = this.config.quantPix;
    const [h, w, D] = q.codeShape;
    const expected = batch * h * w * D;
    if (pixelCodes.length !== expected) throw new Error(`decode: code_pix has ${pixelCodes.length} values, [${batch},${h},${w},${D}] needs ${expected}`);
    for (let i = 0; i < pixelCodes.length; i++) {
      const code = pixelCodes[i];
      if (!(code >= 0 && code < q.nEmbed)) {
        const at = [Math.floor(i / (h * w * D)), Math.floor(i / (w * D)) % h, Math.floor(i / D) % w, i % D];
        throw new Error(`decode: code_pix[${at}] = ${code} is out of range for the ${q.nEmbed}-entry codebook`);
      }
    }
    const [recon, rgb8] = await this.running(this.decoderFor(batch), (c) => c.prog.run(c.outputs, this.atTurn(c, () => this.write(c.input, pixelCodes))));
    const R = this.config.decoder.resolution;
    return { batch, recon: new Float32Array(recon), shape: [batch, 3, R, R], images: unpackRgb8(rgb8, [batch, R, R]) };
  }

  /** The recorded programs (for taps, profiling and dispatch counts). */
  encoderProgram(batch: number): Program {
    return this.encoderFor(batch).prog;
  }

  decoderProgram(batch: number): Program {
    return this.decoderFor(batch).prog;
  }

  private encoderFor(batch: number): Compiled {
    return this.programFor(this.encoders, batch, `encode B=${batch}`, (prog) => {
      const v = this.config.vision;
      const input = this.persistent([batch, v.numChannels, v.imageSize, v.imageSize], 'f32', 'pixel_values');
      const out = encodeImage(prog, this.weights, this.config, input);
      return { input, outputs: [out.codePix, out.codeSem, out.zqSem, out.poolerOutput] };
    });
  }

  private decoderFor(batch: number): Compiled {
    return this.programFor(this.decoders, batch, `decode B=${batch}`, (prog) => {
      const q = this.config.quantPix;
      const G = gridSize(this.config.vision);
      const input = this.persistent([batch, G, G, q.depth], 'i32', 'code_pix');
      const zq = embedCodes(prog, this.weights, this.config, input); // [B, L, E]
      const feats = postquantPix(prog, this.weights, this.config, zq); // [B, L, C]
      const recon = decodeFromFeatures(prog, this.weights, this.config, feats); // [B, 3, R, R]
      const rgb8 = toRgb8(prog, recon); // [B, R, R] packed RGB8
      return { input, outputs: [recon, rgb8] };
    });
  }

  /**
   * The stage's program for `batch`, recorded on first use (its outputs pinned); then the least
   * recently used ones beyond programsPerStage are freed, and so are the weights only packed
   * layouts are read through.
   */
  private programFor(map: Map<number, Compiled>, batch: number, label: string, record: (prog: Program) => { input: Tensor; outputs: Tensor[] }): Compiled {
    this.alive(label);
    let c = this.touch(map, batch);
    if (!c) {
      const prog = this.newProgram(label);
      const { input, outputs } = record(prog);
      for (const t of outputs) t.pinned = true;
      c = { prog, input, outputs, busy: 0 };
      map.set(batch, c);
      this.evict(map);
      this.releaseUnboundOriginals();
      this.onNewProgram?.(prog);
    }
    return c;
  }

  /** The program of `batch`, now the most recently used (maps keep insertion order: oldest first). */
  private touch(map: Map<number, Compiled>, batch: number): Compiled | undefined {
    const c = map.get(batch);
    if (c) {
      map.delete(batch);
      map.set(batch, c);
    }
    return c;
  }

  /** Frees the least recently used programs beyond programsPerStage, skipping those with calls queued or running, and the newest. */
  private evict(map: Map<number, Compiled>): void {
    const entries = [...map.entries()].slice(0, -1);
    for (const [batch, c] of entries) {
      if (map.size <= this.programsPerStage) return;
      if (c.busy > 0) continue;
      map.delete(batch);
      this.free(c);
    }
  }

  /**
   * A call on program `c`, counted from now (so that neither eviction nor dispose frees `c` or
   * the weights while it is queued or running) until it settles.
   */
  private async running<T>(c: Compiled, run: (c: Compiled) => Promise<T>): Promise<T> {
    c.busy++;
    this.inFlight++;
    try {
      return await run(c);
    } finally {
      c.busy--;
      this.inFlight--;
      if (this.disposed) this.freeIfIdle();
      else {
        this.evict(this.encoders);
        this.evict(this.decoders);
      }
    }
  }

  /** A run's prelude (see Program.run), which runs at the run's turn: refused if the model was disposed meanwhile. */
  private atTurn(c: Compiled, prelude: (encoder: GPUCommandEncoder) => void): (encoder: GPUCommandEncoder) => void {
    return (encoder) => {
      this.alive(c.prog.label);
      prelude(encoder);
    };
  }

  /** Throws if the model was disposed, or its device lost (a DeviceLostError), naming `what`. */
  private alive(what: string): void {
    if (this.disposed) throw new Error(`DualToken: the model was disposed (${what})`);
    this.gpu.check(what);
  }

  private free(c: Compiled): void {
    c.prog.destroy();
    c.input.buffer.destroy(); // the outputs are the program's own buffers
  }

  /** A program whose packed weights give their memory back (see freeOriginal). */
  private newProgram(label: string): Program {
    const prog = new Program(this.kernels, label, this.keepTaps);
    prog.onPacked = (w) => this.freeOriginal(w, prog);
    return prog;
  }

  /**
   * A weight was just packed (the kn / gemm variants' transposed or f16 copy): its original is
   * freed unless a recorded dispatch binds it, so the two never sit side by side for long (the
   * peak stays near the loaded size). Only when every linear and conv call reads one layout
   * whatever the shape class (variants.singleWeightLayout), so no later recording needs it.
   */
  private freeOriginal(w: Tensor, recording: Program): void {
    if (!variantsOf(this.kernels).singleWeightLayout()) return;
    this.measure(recording); // the peak: the packed copy made, the original not yet freed
    this.weights.releaseOriginal(w, this.boundBuffers(recording));
  }

  /** After a recording: freeOriginal for every packed weight no program binds. */
  private releaseUnboundOriginals(): void {
    if (!variantsOf(this.kernels).singleWeightLayout()) return;
    this.memory();
    this.weights.releasePackedOriginals(this.boundBuffers());
  }

  private boundBuffers(extra?: Program): Set<GPUBuffer> {
    const bound = new Set<GPUBuffer>(extra?.boundBuffers());
    for (const c of [...this.encoders.values(), ...this.decoders.values()]) for (const b of c.prog.boundBuffers()) bound.add(b);
    return bound;
  }

  /** GPU memory held now, and the peak so far. */
  memory(): GpuMemory {
    return this.measure();
  }

  /** memory(), counting also a program being recorded. */
  private measure(recording?: Program): GpuMemory {
    let programs = recording?.allocatedBytes ?? 0;
    for (const c of [...this.encoders.values(), ...this.decoders.values()]) programs += c.prog.allocatedBytes + c.input.buffer.size;
    const m = { weights: this.weights.byteLength, packed: this.weights.packedByteLength, programs, peak: 0 };
    this.peakBytes = Math.max(this.peakBytes, m.weights + m.packed + m.programs);
    return { ...m, peak: this.peakBytes };
  }

  private persistent(shape: number[], dtype: 'f32' | 'i32', label: string): Tensor {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    const buffer = this.gpu.device.createBuffer({ label, size: Math.ceil(bytes / 16) * 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    const t = new Tensor(buffer, shape, dtype, 0, label);
    t.pinned = true;
    return t;
  }

  private write(t: Tensor, data: Float32Array | Int32Array): void {
    this.gpu.device.queue.writeBuffer(t.buffer, t.offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /**
   * Frees the model's GPU memory: now, or once the calls running at this moment have finished
   * (they complete; calls queued behind them and later calls are refused).
   */
  dispose(): void {
    this.disposed = true;
    this.freeIfIdle();
  }

  private freeIfIdle(): void {
    if (this.inFlight > 0) return;
    for (const c of [...this.encoders.values(), ...this.decoders.values()]) this.free(c);
    this.encoders.clear();
    this.decoders.clear();
    this.weights.destroy();
    this.textTower?.dispose();
  }
}
