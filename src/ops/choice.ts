// Which kernel variant each op call records, chosen per adapter. Every op has several variants
// that compute the same thing (each validated against the op's float64 reference); which is
// fastest depends on the adapter: CPU drivers (lavapipe, SwiftShader) run each invocation as a
// SIMD lane and do every storage load inside a loop lane by lane, GPUs want the opposite.
//
// The choice, per op, in order: an explicit override (API `kernels: {linear: 'kn_sg'}`, CLI
// `--kernel linear=kn_sg`), else the autotuned winner for this adapter and shape class
// (autotune.ts), else the op's default for this adapter class (its spec's `defaults`). A variant
// the device cannot run (missing feature) is refused when named. A variant that cannot take a
// call (its spec's `refuses`): an override is an error naming the call and the reason; a tuned or
// default choice falls back (the spec's `fallback`, else the op's general variant).
import type { Gpu } from '../core/gpu.js';
import type { KernelLibrary } from '../core/kernels.js';
import { OP_NAMES, SPECS } from './specs.js';
import type { CallDims, Need, OpName, Precision, VariantInfo } from './types.js';

export { OP_NAMES } from './specs.js';
export type { OpName, PackedLayout, Precision, VariantInfo } from './types.js';

/** Every variant of every op; the first one is the general variant (any shape, any adapter). */
export const VARIANTS: Record<OpName, VariantInfo[]> = Object.fromEntries(OP_NAMES.map((op) => [op, SPECS[op].variants])) as Record<OpName, VariantInfo[]>;

/** The accuracy bound of the f32 variants: worst |got - ref| over the largest |ref|. */
export const F32_TOLERANCE = 1e-4;

function info(op: OpName, variant: string): VariantInfo {
  const v = SPECS[op].variants.find((i) => i.name === variant);
  if (!v) throw new Error(`no ${op} variant '${variant}' (variants: ${SPECS[op].variants.map((i) => i.name).join(', ')})`);
  return v;
}

/** Whether a variant is held to the f32 bound (not a reduced-precision one such as f16 weights). */
export function isFullPrecision(op: OpName, variant: string): boolean {
  return (info(op, variant).tolerance ?? F32_TOLERANCE) <= F32_TOLERANCE;
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

type AdapterInfo = { subgroupMinSize?: number; subgroupMaxSize?: number };
const adapterInfo = (gpu: Gpu): AdapterInfo | undefined => (gpu.device as GPUDevice & { adapterInfo?: AdapterInfo }).adapterInfo;

/** Whether the device's subgroups are known to come in multiples of 8 lanes (the kernels that work in groups of 8). */
export function subgroupsOf8(gpu: Gpu): boolean {
  return gpu.has('subgroups') && (adapterInfo(gpu)?.subgroupMinSize ?? 0) >= 8;
}

function lacks(gpu: Gpu, need: Need): string | undefined {
  if (need === 'subgroups8') return subgroupsOf8(gpu) ? undefined : `subgroups of at least 8 invocations, which ${gpu.describe()} does not report (${gpu.has('subgroups') ? `minimum ${adapterInfo(gpu)?.subgroupMinSize ?? 'unknown'}` : 'no subgroups'})`;
  return gpu.has(need) ? undefined : `the '${need}' feature, which ${gpu.describe()} does not have`;
}

/** Why the device cannot run `variant` of `op`, or undefined when it can. */
export function unsupported(gpu: Gpu, op: OpName, variant: string): string | undefined {
  const v = SPECS[op].variants.find((i) => i.name === variant);
  if (!v) return `no ${op} variant '${variant}' (variants: ${SPECS[op].variants.map((i) => i.name).join(', ')})`;
  for (const need of v.needs ?? []) {
    const why = lacks(gpu, need);
    if (why) return `${op} variant '${variant}' needs ${why}`;
  }
  return undefined;
}

/** The variants of `op` this device can run, general variant first. */
export function availableVariants(gpu: Gpu, op: OpName): string[] {
  return SPECS[op].variants.map((v) => v.name).filter((v) => !unsupported(gpu, op, v));
}

/** The variants that do a call of `op` in shape class `cls` themselves (no delegating ones), general variant first. */
export function variantsForClass(gpu: Gpu, op: OpName, cls: string): string[] {
  return availableVariants(gpu, op).filter((v) => !info(op, v).delegates?.[cls]);
}

/** The fixed choice when nothing was tuned: per op, the first of its spec's defaults for this adapter class the device can run. */
export function defaultChoice(gpu: Gpu, precision: Precision = 'f32'): Record<OpName, string> {
  const cpu = isCpuAdapter(gpu);
  const out = {} as Record<OpName, string>;
  for (const op of OP_NAMES) {
    const d = SPECS[op].defaults;
    const preferred = precision === 'f16' ? ((cpu ? d.cpuF16 : d.gpuF16) ?? (cpu ? d.cpu : d.gpu)) : cpu ? d.cpu : d.gpu;
    out[op] = preferred.find((v) => !unsupported(gpu, op, v)) ?? SPECS[op].variants[0].name;
  }
  return out;
}

/** The shape class of a call (autotuning is per class). */
export function shapeClass(op: OpName, dims: CallDims): string {
  return SPECS[op].shapeClass(dims);
}

/**
 * Invocations per workgroup for the CPU-driver kernels whose invocations each take a column
 * block: 16, or the adapter's largest subgroup when that is larger (the subgroup kernels need
 * whole subgroups). One size per adapter, whatever the shape, so that each kernel compiles once:
 * on lavapipe a second pipeline of linear_kn_sg costs seconds of compile at first use, far more
 * than the idle lanes of a narrow output cost at run time.
 */
export function pickWorkgroup(gpu: Gpu): number {
  return Math.max(16, Math.min(64, adapterInfo(gpu)?.subgroupMaxSize || 64));
}

/** The variant that serves a call of `op` in shape class `cls` when `variant` is chosen (VariantInfo.delegates). */
export function served(op: OpName, variant: string, cls: string, precision: Precision): string {
  return info(op, variant).delegates?.[cls]?.[precision] ?? variant;
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

  /** Sets (or with undefined clears) the override of one op: tests, benchmarks and autotuning record each variant this way. */
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
   * (A call a variant refuses falls back; the shapes where that happens are the ones whose
   * weights then stay as loaded: conv2d's fallbacks are decided by the weight's shape alone.)
   */
  singleWeightLayout(): boolean {
    return OP_NAMES.every((op) =>
      (SPECS[op].classesByWeight ?? [undefined]).every((cls) => {
        const tuned = Object.entries(this.tuned).filter(([k]) => (cls ? k === `${op}/${cls}` : k.startsWith(`${op}/`)));
        const reachable = this.overrides[op] ? [this.overrides[op]!] : [this.defaults[op], ...tuned.map(([, v]) => v)];
        return new Set(reachable.map((v) => info(op, cls ? served(op, v, cls, this.mode) : v).packs ?? 'as loaded')).size === 1;
      }),
    );
  }

  /** The variant chosen for calls of `op` in shape class `cls` (a variant's delegate where it leaves the class to another). */
  forClass(op: OpName, cls: string): string {
    return served(op, this.overrides[op] ?? this.tuned[`${op}/${cls}`] ?? this.defaults[op], cls, this.mode);
  }

  /**
   * The variant a call of `op` with dimensions `dims` records. `what()` names the call (op, tensor
   * label, shapes) for the error thrown when an override cannot take it.
   */
  choose(op: OpName, dims: CallDims, what: () => string): string {
    const cls = shapeClass(op, dims);
    const forced = this.overrides[op];
    let variant = this.forClass(op, cls);
    const tried: string[] = [];
    for (;;) {
      const why = info(op, variant).refuses?.(dims);
      if (!why) return variant;
      if (forced) throw new Error(`--kernel ${op}=${forced}${variant === forced ? '' : ` (${cls}: ${variant})`} cannot take ${what()}: ${why}`);
      tried.push(variant);
      do variant = info(op, variant).fallback ?? SPECS[op].variants[0].name;
      while (unsupported(this.gpu, op, variant));
      if (tried.includes(variant)) throw new Error(`${op}: no variant takes ${what()} (tried ${tried.join(', ')})`);
    }
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
    if (!SPECS[op].variants.some((v) => v.name === m[2])) throw new Error(`--kernel ${item}: no ${op} variant '${m[2]}' (variants: ${SPECS[op].variants.map((v) => v.name).join(', ')})`);
    out[op] = m[2];
  }
  return out;
}
