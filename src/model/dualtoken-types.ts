// The public shapes of DualToken (dualtoken.ts, which re-exports them): what encode and decode
// return, the options of create(), and the GPU memory report.
import type { TuneStorage } from '../ops/autotune.js';
import type { RgbImage } from '../core/image.js';
import type { Program } from '../core/program.js';
import type { TensorSource } from '../core/tensor-source.js';
import type { TextTokenizer } from '../core/tokenizer.js';
import type { KernelChoice, Precision } from '../ops/choice.js';
import type { LoadProgress } from '../core/weights.js';

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
  /** Kernel variants by op, e.g. {linear: 'kn_sg'} (see src/ops/choice.ts); wins over tuning. */
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
