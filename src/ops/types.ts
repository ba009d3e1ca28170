// What an op module states about itself (src/ops/<op>/spec.ts) and the cases it generates
// (src/ops/<op>/cases.ts): the variant choice (choice.ts), the variant tests, the kernel lab and
// autotune all read these and nothing else about an op.
import type { Gpu } from '../core/gpu.js';
import type { Program } from '../core/program.js';
import type { Tensor } from '../core/tensor.js';

export type OpName = 'linear' | 'attention' | 'conv2d' | 'group_norm' | 'rq_search' | 'layer_norm' | 'softmax';

/**
 * Device capabilities a variant needs: WebGPU features, or 'subgroups8' (subgroups known to have
 * at least 8 invocations: the kernels that work on groups of 8 lanes).
 */
export type Need = 'subgroups' | 'subgroups8' | 'shader-f16';

/** The packed weight layouts (packing.ts PACKINGS): transposed f32, transposed half pairs, Winograd domains. */
export type PackedLayout = 'f32' | 'f16' | 'wino' | 'wino4';

/**
 * 'f32' (the default): every op within the f32 bound, the official model's outputs to float32
 * rounding. 'f16': the ops with a reduced-precision variant use it: on CPU adapters weights stored
 * as halves (inputs, products and sums stay f32), on GPUs f16 arithmetic where the adapter has
 * shader-f16 (sums of 8 products in f16, added in f32). Outputs then differ from the official
 * model's by about 1e-4..3e-3 of their size, and codes can differ at near ties.
 */
export type Precision = 'f32' | 'f16';

/** The dimensions of one call of an op, as its recording function sees them (e.g. {M, K} for linear). */
export type CallDims = Record<string, number>;

export interface VariantInfo {
  name: string;
  /** One line for --help and the benchmark table. */
  summary: string;
  /** The WGSL kernels one call records, in order of first dispatch (the tests check them). */
  kernels: string[];
  needs?: Need[];
  /** Largest error it may have relative to the largest reference value (f32 variants: none, the f32 bound). */
  tolerance?: number;
  /** The packed weight layout it reads instead of the weight as loaded. */
  packs?: PackedLayout;
  /** Why it cannot take a call of these dimensions; undefined when it can. */
  refuses?: (dims: CallDims) => string | undefined;
  /** The variant an automatic choice takes where this one refuses a call (default: the op's general variant). */
  fallback?: string;
  /** Shape classes it leaves to another variant, per precision (conv2d winograd: 1x1 convs). */
  delegates?: Record<string, Record<Precision, string>>;
  /**
   * Per shape class, the share of the op's direct multiply-adds it does where an algorithm saves
   * some (Winograd: 4/9): its GFLOP/s counted with the direct FLOPs are an effective rate.
   */
  flopsShare?: Record<string, number>;
}

/** Per adapter class and precision, the variants to use in order of preference (the first the device can run). */
export interface DefaultPreference {
  cpu: string[];
  gpu: string[];
  /** With precision 'f16' (default: the f32 lists). */
  cpuF16?: string[];
  gpuF16?: string[];
}

/** An op's variants and how it classes its calls. */
export interface OpSpec {
  op: OpName;
  /** Every variant; the first is the general one (any shape, any adapter) and never refuses a call. */
  variants: VariantInfo[];
  defaults: DefaultPreference;
  /** The class of a call: autotuning is per class, as the best variant changes with the shape. */
  shapeClass(dims: CallDims): string;
  /** Classes a weight fixes (a conv weight's kernel size): layouts need only agree within each. */
  classesByWeight?: string[];
}

/** How far sampled (or all) outputs are from their float64 references. */
export interface CaseError {
  /** Worst |got - ref| over the largest |ref| among the compared outputs (Infinity for NaN). */
  err: number;
  /** Outputs compared. */
  samples: number;
  /** Flat index of the worst error, and the two values there. */
  at: number;
  got: number;
  ref: number;
}

/** An op at one shape with seeded inputs: recorded with whichever variant the library's choice gives. */
export interface OpCase {
  op: OpName;
  /** e.g. 'linear 729x1152 -> 1152'. */
  title: string;
  /** The call's dimensions, as the op's spec classes them and its variants' refuses() read them. */
  dims: CallDims;
  unit: 'GFLOP/s' | 'GB/s';
  /** FLOPs (or bytes for GB/s) of one run. */
  work: number;
  /** The bound for the f32 variants (a reduced-precision variant is held to its own when larger). */
  tolerance: number;
  prepare(gpu: Gpu): PreparedCase;
}

export interface PreparedCase {
  /** Records the op into `prog`; returns its output. */
  record(prog: Program): Tensor;
  /** The output against the float64 reference (on every output, or on samples at large sizes). */
  check(out: ArrayBuffer): CaseError;
  destroy(): void;
}

/** The cases an op module generates: the variant tests', the kernel lab's (the model's sizes), autotune's (small, per class). */
export interface OpCases {
  tests(): OpCase[];
  lab(): { id: string; make: () => OpCase }[];
  tune(): OpCase[];
}
