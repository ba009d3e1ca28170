// The public model: DualToken.encode (pixel_values -> pixel codes, semantic codes, semantic
// features, image embedding) and DualToken.decode (pixel codes -> image), each a Program
// recorded once per batch size and replayed. Calls may overlap in any mix: each writes its input
// at its program's turn (Program.run runs one at a time), a program with runs queued is never
// evicted, and dispose() frees the GPU memory once the calls in flight have finished (calls
// queued behind them, and later ones, are refused). The programs kept, their eviction and the
// GPU memory accounting are in program-pool.ts.
import type { DualTokenConfig } from '../core/config.js';
import { gridSize } from '../core/config.js';
import type { Gpu } from '../core/gpu.js';
import { autotune, loadTuned } from '../ops/autotune.js';
import { KernelLibrary, type ShaderSources } from '../core/kernels.js';
import { variantsOf } from '../ops/choice.js';
import type { RgbImage } from '../core/image.js';
import { ImageBatch, preprocess, toRgb8, unpackRgb8 } from '../core/preprocess.js';
import { Program } from '../core/program.js';
import { Tensor } from '../core/tensor.js';
import type { TensorSource } from '../core/tensor-source.js';
import { Weights } from '../core/weights.js';
import { decodeFromFeatures, usedByDecoder } from './decoder.js';
import { embedCodes, encodeImage, postquantPix, prepareEncoderWeights, usedByEncoder, usedByPrepare } from './encoder.js';
import { TextTower, type ClassifyResult, type TextEncodeResult, type TextInput } from './text-model.js';
import type { DecodeResult, DualTokenOptions, EncodeResult, GpuMemory } from './dualtoken-types.js';
import { ProgramPool, type Compiled, type Stage } from './program-pool.js';

export type { DecodeResult, DualTokenOptions, EncodeResult, GpuMemory } from './dualtoken-types.js';

export class DualToken {
  private readonly programs: ProgramPool;
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
    programsPerStage: number,
    private readonly onNewProgram?: (prog: Program) => void,
  ) {
    this.programs = new ProgramPool(kernels, weights, keepTaps, programsPerStage, onNewProgram);
  }

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
    return this.programFor('encode', batch, (prog) => {
      const v = this.config.vision;
      const input = this.persistent([batch, v.numChannels, v.imageSize, v.imageSize], 'f32', 'pixel_values');
      const out = encodeImage(prog, this.weights, this.config, input);
      return { input, outputs: [out.codePix, out.codeSem, out.zqSem, out.poolerOutput] };
    });
  }

  private decoderFor(batch: number): Compiled {
    return this.programFor('decode', batch, (prog) => {
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

  /** The stage's program for `batch` (see ProgramPool.get), refused once the model is disposed. */
  private programFor(stage: Stage, batch: number, record: (prog: Program) => { input: Tensor; outputs: Tensor[] }): Compiled {
    const label = `${stage} B=${batch}`;
    this.alive(label);
    return this.programs.get(stage, batch, label, record);
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
      else this.programs.evictAll();
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

  /** GPU memory held now, and the peak so far. */
  memory(): GpuMemory {
    return this.programs.measure();
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
    this.programs.freeAll();
    this.weights.destroy();
    this.textTower?.dispose();
  }
}
