// Kernel variants: which WGSL kernel each op records, chosen per adapter. Every op has several
// variants that compute the same thing (each validated against the same CPU references); which
// is fastest depends on the adapter: CPU drivers (lavapipe, SwiftShader) run each invocation as a
// SIMD lane and do every storage load inside a loop lane by lane, GPUs want the opposite.
//
// The choice, per op, in order: an explicit override (API `kernels: {linear: 'kn_sg'}`, CLI
// `--kernel linear=kn_sg`), else the autotuned winner for this adapter and shape class (see
// autotune.ts), else a fixed default per adapter class. A variant the device cannot run
// (missing feature) is refused when named explicitly; a variant that cannot take a particular
// shape (e.g. K not a multiple of 4) falls back to the op's general variant for that call.
import type { Gpu } from './gpu.js';
import type { KernelLibrary } from './kernels.js';

export type OpName = 'linear' | 'attention' | 'conv2d' | 'group_norm' | 'rq_search';

export const OP_NAMES: readonly OpName[] = ['linear', 'attention', 'conv2d', 'group_norm', 'rq_search'];

export interface VariantInfo {
  name: string;
  /** One line for --help and the benchmark table. */
  summary: string;
  /** Device features it needs. */
  needs?: ('subgroups' | 'shader-f16')[];
  /** Largest error it may have relative to the largest reference value (f32 variants: 1e-4 or less). */
  tolerance?: number;
  /** The packed weight layout it reads (ops.packedWeight) instead of the weight as loaded. */
  packs?: PackedLayout;
  /** Shape classes it leaves to another variant, per precision (conv2d winograd: 1x1 convs). */
  delegates?: Record<string, Record<Precision, string>>;
  /**
   * Per shape class, the share of the op's direct multiply-adds it does where an algorithm saves
   * some (Winograd: 4/9): its GFLOP/s counted with the direct FLOPs are an effective rate.
   */
  flopsShare?: Record<string, number>;
}

/** The packed weight layouts (ops.PACKINGS): transposed f32, transposed half pairs, Winograd domain. */
export type PackedLayout = 'f32' | 'f16' | 'wino' | 'wino4';

/**
 * The Winograd conv variants serve 3x3 convs only; 1x1 convs (GEMMs already) go to gemm_kn in f32
 * (on lavapipe faster than gemm_sg over the 384 decoder's 1x1 convs as a whole, see
 * bench/README.md), to gemm_sg_f16 in f16.
 */
const ONE_BY_ONE_TO_GEMM: VariantInfo['delegates'] = { k1: { f32: 'gemm_kn', f16: 'gemm_sg_f16' } };

/** Every variant of every op; the first one is the general variant (any shape, any adapter). */
export const VARIANTS: Record<OpName, VariantInfo[]> = {
  linear: [
    { name: 'tiled', summary: '4x4 outputs per invocation on the PyTorch [N,K] weight (any shape)' },
    { name: 'kn', summary: 'transposed [K,N] weight, 16 rows per workgroup, 4 columns per invocation (K % 4 == 0)', packs: 'f32' },
    { name: 'kn_sg', summary: 'kn with the rows shared through subgroup shuffles (K % 4 == 0)', needs: ['subgroups'], packs: 'f32' },
    { name: 'kn_sg_f16', summary: 'kn_sg on f16 weights (8 columns per invocation), f32 math; tolerance 2e-3', needs: ['subgroups'], tolerance: 2e-3, packs: 'f16' },
    { name: 'wg_tiled', summary: 'GPU-shaped: 128x128 (or, for small outputs, 64x64) tile, 8x8 outputs per invocation, K in steps of 8 staged in workgroup memory, [N,K] weight (any shape)' },
    { name: 'wg_tiled_f16', summary: 'wg_tiled in f16 arithmetic (staged halves, 8-term f16 sums added in f32; f32 weight); tolerance 3e-3', needs: ['shader-f16'], tolerance: 3e-3 },
  ],
  attention: [
    { name: 'lane', summary: 'one query per invocation, online softmax' },
    { name: 'sg', summary: 'queries across a subgroup share each K/V row through subgroup shuffles', needs: ['subgroups'] },
    { name: 'sg2', summary: 'sg with two queries per invocation: each K/V row loaded feeds twice the multiply-adds', needs: ['subgroups'] },
    { name: 'wg', summary: 'GPU-shaped flash attention: 64 queries per workgroup share K/V tiles staged in workgroup memory' },
  ],
  conv2d: [
    { name: 'direct', summary: '4 output channels x 4 pixels per invocation on the [Cout,Cin,k,k] weight' },
    { name: 'gemm_sg', summary: 'implicit GEMM: 16 pixels per workgroup x 4 channels per invocation, transposed weight, subgroup shuffles', needs: ['subgroups'], packs: 'f32' },
    { name: 'gemm_sg_f16', summary: 'gemm_sg on f16 weights (8 channels per invocation), f32 math; tolerance 2e-3', needs: ['subgroups'], tolerance: 2e-3, packs: 'f16' },
    {
      name: 'gemm_kn',
      summary: '1x1: the linear kn_sg GEMM on NCHW (the weight as loaded times each image as a [Cin, H*W] matrix, H*W and Cin % 4 == 0, else gemm_sg); 3x3 takes gemm_sg',
      needs: ['subgroups'],
      delegates: { k3: { f32: 'gemm_sg', f16: 'gemm_sg_f16' } },
    },
    { name: 'wg_tiled', summary: 'GPU-shaped implicit GEMM: 128 pixels x 128 channels (or 64 x 64 for small outputs) per workgroup, 8x8 per invocation, staged in workgroup memory' },
    { name: 'wg_tiled_f16', summary: 'wg_tiled in f16 arithmetic (staged halves, 8-term f16 sums added in f32; f32 weight); tolerance 3e-3', needs: ['shader-f16'], tolerance: 3e-3 },
    {
      name: 'winograd',
      summary: '3x3: Winograd F(2x2,3x3), 2.25x fewer multiply-adds: input transform, 16 GEMMs (linear kn_sg), output transform; 1x1 takes gemm_kn (f16: gemm_sg_f16)',
      needs: ['subgroups'],
      packs: 'wino',
      delegates: ONE_BY_ONE_TO_GEMM,
      flopsShare: { k3: 4 / 9 },
    },
    {
      name: 'winograd4',
      summary: '3x3: Winograd F(4x4,3x3), 4x fewer multiply-adds, error ~1e-5 of the output (vs ~1e-6); as winograd with 36 GEMMs',
      needs: ['subgroups'],
      tolerance: 3e-5,
      packs: 'wino4',
      delegates: ONE_BY_ONE_TO_GEMM,
      flopsShare: { k3: 1 / 4 },
    },
  ],
  group_norm: [
    { name: 'chunked', summary: 'statistics per chunk of 512 values (two passes), merge, normalise' },
    { name: 'vec4', summary: 'one-pass shifted sums per chunk, vec4 loads and stores (H*W % 4 == 0)' },
  ],
  rq_search: [
    { name: 'lanes', summary: 'each invocation scans the whole codebook for 4 tokens (the codebook loads are uniform)' },
    { name: 'workgroup', summary: 'one workgroup per token, the codebook split across its invocations, argmin merged in workgroup memory' },
  ],
};

/**
 * 'f32' (the default): every op within the f32 bound, the official model's outputs to float32
 * rounding. 'f16': the ops that have a variant storing its weights as halves (linear, conv2d on
 * adapters with subgroups) use it; inputs, products and sums stay f32. Outputs then differ from
 * the official model's by about 1e-4..2e-3 of their size, and codes can differ at near ties.
 */
export type Precision = 'f32' | 'f16';

/** The accuracy bound of the f32 variants: worst sampled |got - ref| over the largest |ref|. */
export const F32_TOLERANCE = 1e-4;

/** Whether a variant is held to the f32 bound (not a reduced-precision one such as f16 weights). */
export function isFullPrecision(op: OpName, variant: string): boolean {
  return (VARIANTS[op].find((v) => v.name === variant)?.tolerance ?? F32_TOLERANCE) <= F32_TOLERANCE;
}

/** Overrides by op name, e.g. {linear: 'kn_sg'}. */
export type KernelChoice = Partial<Record<OpName, string>>;

/** Autotuned winners: key `${op}/${shapeClass}` -> variant name (for one adapter). */
export type TunedTable = Record<string, string>;

/** CPU Vulkan drivers (lavapipe/llvmpipe, SwiftShader) and WebGPU fallback adapters. */
export function isCpuAdapter(gpu: Gpu): boolean {
  const a = gpu.adapter;
  const text = `${a.description} ${a.device} ${a.vendor}`.toLowerCase();
  return a.isFallbackAdapter || a.architecture === 'software' || /swiftshader|llvmpipe|lavapipe/.test(text);
}

/** Why the device cannot run `variant` of `op`, or undefined when it can. */
export function unsupported(gpu: Gpu, op: OpName, variant: string): string | undefined {
  const info = VARIANTS[op].find((v) => v.name === variant);
  if (!info) return `no ${op} variant '${variant}' (variants: ${VARIANTS[op].map((v) => v.name).join(', ')})`;
  for (const need of info.needs ?? []) {
    if (!gpu.has(need)) return `${op} variant '${variant}' needs the '${need}' feature, which ${gpu.describe()} does not have`;
  }
  return undefined;
}

/** The variants of `op` this device can run, general variant first. */
export function availableVariants(gpu: Gpu, op: OpName): string[] {
  return VARIANTS[op].map((v) => v.name).filter((v) => !unsupported(gpu, op, v));
}

/** The variants that do a call of `op` in shape class `cls` themselves (no delegating ones), general variant first. */
export function variantsForClass(gpu: Gpu, op: OpName, cls: string): string[] {
  return availableVariants(gpu, op).filter((v) => !VARIANTS[op].find((i) => i.name === v)?.delegates?.[cls]);
}

/**
 * The fixed choice when nothing was tuned, from measurements (bench/README.md, "Measurements
 * behind design choices"): on CPU adapters (lavapipe, the kernel lab) the subgroup variants of
 * every op; on an NVIDIA H200 kn_sg linear and sg attention made the 384 encode faster, while
 * gemm_sg conv made the decode slower than direct, so GPUs keep direct conv and chunked GroupNorm.
 * rq_search on GPUs: 'lanes' was measured latency-bound on the H200 (183 invocations of serial
 * work at the released size); 'workgroup' spreads the same search over 729 x 256 invocations.
 * It is the GPU default by that reasoning and has not been timed on a GPU yet (bench/gpu.sh
 * times both); on lavapipe 'lanes' is the faster (kernel lab). The GPU-shaped linear and conv2d
 * 'wg_tiled' and attention 'wg' are nobody's default until timed on a GPU. On CPU adapters 3x3
 * convs take 'winograd4' (faster than gemm_sg and than F(2x2) 'winograd' in the kernel lab on
 * lavapipe; the real-size decoder's output within 1e-5 of the direct kernel's with either;
 * untimed on GPUs, where gpu.sh times them), 1x1 gemm_kn, and attention 'sg2' (two queries per
 * invocation, faster than sg in the kernel lab; sg on GPUs, as timed). Deleted as nobody's
 * default (git keeps them; bench/README.md says why): linear 'rows', attention 'sg3'.
 * With precision 'f16' the f16-weight variants come first where the adapter class uses that
 * kernel family (kn_sg_f16 linear everywhere; on CPU adapters winograd4 keeps 3x3 convs, as it is
 * faster than gemm_sg_f16 there, and delegates 1x1 convs to gemm_sg_f16).
 */
export function defaultChoice(gpu: Gpu, precision: Precision = 'f32'): Record<OpName, string> {
  const cpu = isCpuAdapter(gpu);
  const f16 = precision === 'f16';
  const pick = (op: OpName, preferred: string[]): string => {
    for (const v of preferred) if (!unsupported(gpu, op, v)) return v;
    return VARIANTS[op][0].name;
  };
  return {
    linear: pick('linear', f16 ? ['kn_sg_f16', 'kn_sg', 'kn'] : ['kn_sg', 'kn']),
    attention: pick('attention', cpu ? ['sg2', 'sg'] : ['sg']),
    conv2d: pick('conv2d', cpu ? ['winograd4', 'gemm_sg'] : []),
    group_norm: pick('group_norm', cpu ? ['vec4'] : []),
    rq_search: pick('rq_search', cpu ? [] : ['workgroup']),
  };
}

/**
 * The shape class an op call falls in: autotuning is per class, as the best variant changes with
 * the shape (a one-row linear wastes most of a 16-row workgroup).
 */
export function shapeClass(op: OpName, dims: Record<string, number>): string {
  switch (op) {
    case 'linear':
      return dims.M >= 64 ? 'rows>=64' : 'rows<64';
    case 'attention':
      return dims.Lq >= 16 ? 'queries>=16' : 'queries<16';
    case 'conv2d':
      return `k${dims.K}`;
    case 'group_norm':
    case 'rq_search':
      return 'all';
  }
}

/**
 * Invocations per workgroup for the CPU-driver kernels whose invocations each take a column
 * block: 16, or the adapter's largest subgroup when that is larger (the subgroup kernels need
 * whole subgroups). One size per adapter, whatever the shape, so that each kernel compiles once:
 * on lavapipe a second pipeline of linear_kn_sg costs seconds of compile at first use, far more
 * than the idle lanes of a narrow output cost at run time. On lavapipe workgroups of 32 or 64 were
 * slower for conv2d gemm_sg (their invocations' spilled registers outgrow the L1 cache) and no
 * faster for linear kn_sg (see bench/README.md).
 */
export function pickWorkgroup(gpu: Gpu): number {
  const info = (gpu.device as GPUDevice & { adapterInfo?: { subgroupMaxSize?: number } }).adapterInfo;
  return Math.max(16, Math.min(64, info?.subgroupMaxSize || 64));
}

/** Whether the device's subgroups are known to come in multiples of 8 lanes (conv2d gemm_sg works in groups of 8). */
export function subgroupsOf8(gpu: Gpu): boolean {
  const info = (gpu.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  return gpu.has('subgroups') && (info?.subgroupMinSize ?? 0) >= 8;
}

/**
 * Ops whose shape class a weight fixes (a conv weight's kernel size): a weight only ever meets
 * the variants of its class, so the layouts need only agree within each class.
 */
const CLASSES_BY_WEIGHT: Partial<Record<OpName, string[]>> = { conv2d: ['k1', 'k3'] };

/** The variant that serves a call of `op` in shape class `cls` when `variant` is chosen (VariantInfo.delegates). */
function served(op: OpName, variant: string, cls: string | undefined, precision: Precision): string {
  const d = cls ? VARIANTS[op].find((i) => i.name === variant)?.delegates?.[cls] : undefined;
  return d ? d[precision] : variant;
}

/** The layout `variant` of `op` reads its weight in: a packing, or 'as loaded'. */
function packedLayout(op: OpName, variant: string): string {
  return VARIANTS[op].find((i) => i.name === variant)?.packs ?? 'as loaded';
}

/** The variant choice of one KernelLibrary (one device), consulted by the op functions. */
export class KernelVariants {
  private defaults: Record<OpName, string>;
  private overrides: KernelChoice = {};
  private tuned: TunedTable = {};
  private mode: Precision = 'f32';

  constructor(readonly gpu: Gpu) {
    this.defaults = defaultChoice(gpu);
  }

  /** The precision the defaults and tuned choices keep to (explicit overrides may name any variant). */
  get precision(): Precision {
    return this.mode;
  }

  /** Switches the defaults to `precision` and drops tuned choices it does not allow. */
  setPrecision(precision: Precision): void {
    if (precision !== 'f32' && precision !== 'f16') throw new Error(`precision '${precision}': use 'f32' or 'f16'`);
    this.mode = precision;
    this.defaults = defaultChoice(this.gpu, precision);
    this.setTuned(this.tuned);
  }

  /** Explicit choices (API / CLI); each is checked against the device now. */
  override(choice: KernelChoice): void {
    for (const [op, variant] of Object.entries(choice) as [OpName, string][]) {
      if (!OP_NAMES.includes(op)) throw new Error(`--kernel: no op named '${op}' (ops: ${OP_NAMES.join(', ')})`);
      const why = unsupported(this.gpu, op, variant);
      if (why) throw new Error(`--kernel ${op}=${variant}: ${why}`);
    }
    this.overrides = { ...this.overrides, ...choice };
  }

  /** Sets (or with undefined clears) the override of one op: benchmarks and autotuning record each variant this way. */
  force(op: OpName, variant: string | undefined): void {
    if (variant === undefined) {
      delete this.overrides[op];
      return;
    }
    this.override({ [op]: variant });
  }

  /**
   * Autotuned winners for this adapter; entries naming variants the device cannot run, or
   * reduced-precision variants while the precision is 'f32', are ignored.
   */
  setTuned(table: TunedTable): void {
    this.tuned = {};
    for (const [key, variant] of Object.entries(table)) {
      const op = key.split('/')[0] as OpName;
      if (!OP_NAMES.includes(op) || unsupported(this.gpu, op, variant)) continue;
      if (this.mode === 'f32' && !isFullPrecision(op, variant)) continue;
      this.tuned[key] = variant;
    }
  }

  /**
   * Whether every call of each op reads its weight in one layout (VariantInfo.packs) whatever
   * the shape class: then a weight, once packed, never needs its original (nor another packing)
   * again, and the original may be freed. False when overrides or tuned choices mix layouts.
   */
  singleWeightLayout(): boolean {
    return OP_NAMES.every((op) =>
      (CLASSES_BY_WEIGHT[op] ?? [undefined]).every((cls) => {
        const tuned = Object.entries(this.tuned).filter(([k]) => (cls ? k === `${op}/${cls}` : k.startsWith(`${op}/`)));
        const reachable = this.overrides[op] ? [this.overrides[op]!] : [this.defaults[op], ...tuned.map(([, v]) => v)];
        return new Set(reachable.map((v) => packedLayout(op, served(op, v, cls, this.mode)))).size === 1;
      }),
    );
  }

  /** The variant an op call records (a variant's delegate where it leaves the class to another). */
  choose(op: OpName, cls: string): string {
    return served(op, this.overrides[op] ?? this.tuned[`${op}/${cls}`] ?? this.defaults[op], cls, this.mode);
  }

  /** What each op uses, for logs: op -> variant (or `class: variant, ...` when tuned per class). */
  describe(): Record<OpName, string> {
    const out = {} as Record<OpName, string>;
    for (const op of OP_NAMES) {
      const forced = this.overrides[op];
      const tuned = Object.entries(this.tuned).filter(([k]) => k.startsWith(`${op}/`));
      out[op] = forced ? `${forced} (override)` : tuned.length ? `${tuned.map(([k, v]) => `${k.slice(op.length + 1)}: ${v}`).join(', ')} (tuned), else ${this.defaults[op]}` : `${this.defaults[op]} (default)`;
    }
    return out;
  }
}

const registry = new WeakMap<KernelLibrary, KernelVariants>();

/** The variant choice attached to a kernel library (created with the adapter's defaults on first use). */
export function variantsOf(kernels: KernelLibrary): KernelVariants {
  let v = registry.get(kernels);
  if (!v) {
    v = new KernelVariants(kernels.gpu);
    registry.set(kernels, v);
  }
  return v;
}

/** Parses `op=variant` items (CLI `--kernel linear=kn_sg --kernel attention=sg`, or comma-separated). */
export function parseKernelChoice(specs: string | string[]): KernelChoice {
  const out: KernelChoice = {};
  for (const item of (Array.isArray(specs) ? specs : [specs]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z_0-9]+)=([a-z_0-9]+)$/.exec(item);
    if (!m) throw new Error(`--kernel ${item}: expected op=variant (ops: ${OP_NAMES.join(', ')})`);
    const op = m[1] as OpName;
    if (!OP_NAMES.includes(op)) throw new Error(`--kernel ${item}: no op named '${m[1]}' (ops: ${OP_NAMES.join(', ')})`);
    if (!VARIANTS[op].some((v) => v.name === m[2])) throw new Error(`--kernel ${item}: no ${op} variant '${m[2]}' (variants: ${VARIANTS[op].map((v) => v.name).join(', ')})`);
    out[op] = m[2];
  }
  return out;
}
