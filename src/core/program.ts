// A Program is one forward pass recorded once and replayed: every dispatch with its pipeline,
// bind group and uniforms is planned up front; activations get their memory when the program is
// finalized, from their lifetimes in the recorded dispatches (two whose lifetimes do not overlap
// may share a buffer, see planMemory); a run is one command buffer with one readback at the
// end. Runs (and profiles) of one program take turns: they share its activations and outputs,
// so one's input write, submission and readback complete before the next one's start; different
// programs run concurrently. Finiteness checks (checkFinite) count non-finite values into small
// status buffers read back with the outputs: a run that finds one fails naming the check.
import { DeviceLostError, type Gpu } from './gpu.js';
import { KernelLibrary, type CompiledKernel, type Constants, type Defines, type KernelInfo } from './kernels.js';
import { Activation, Tensor, releasedWhy, shapeStr, type GpuDType } from './tensor.js';

export interface DispatchSpec {
  kernel: string;
  /** `{{NAME}}` placeholders of the WGSL (cached per distinct value set). */
  defines?: Defines;
  /** WGSL override constants. */
  constants?: Constants;
  /** Values of the kernel's uniform struct, by member name. */
  uniforms?: Record<string, number>;
  /** Storage buffers by their WGSL variable names. */
  bind: Record<string, Tensor>;
  /** Workgroup count: a number is folded into x,y when it exceeds the per-dimension limit. */
  groups: number | [number, number, number];
  /** Work done, for the profiler's GFLOP/s and GB/s columns. */
  cost?: Cost;
}

export interface Cost {
  /** Floating-point operations this dispatch does. */
  flops?: number;
  /** Bytes read and written (minimum traffic). */
  bytes?: number;
  /**
   * The model's FLOPs this dispatch stands for where its algorithm does fewer (a Winograd conv's
   * GEMM carries the direct convolution's count): totals of a forward pass use it (modelFlops()).
   */
  modelFlops?: number;
}

/** A dispatch's share of the model's FLOPs: its modelFlops, else its flops. */
export function modelFlops(c: Cost): number {
  return c.modelFlops ?? c.flops ?? 0;
}

interface Op {
  info: KernelInfo;
  bind: Record<string, Tensor>;
  uniformOffset: number;
  groups: [number, number, number];
  cost: Cost;
}

interface Planned {
  kernel: CompiledKernel;
  bindGroup: GPUBindGroup;
  groups: [number, number, number];
  cost: Cost;
}

/** A run's finiteness check (Program.checkFinite) found NaN or Inf values. */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
}

/** One dispatch's measured time. */
export interface DispatchTiming {
  kernel: string;
  /** The pipeline: kernel, placeholders and override constants (KernelInfo.key). */
  pipeline: string;
  ms: number;
  cost: Cost;
}

/** Finiteness checks per status buffer: 4 words each (NaNs, Infs, first index, unused), see check_finite.wgsl. */
const CHECKS_PER_STATUS = 256;

/** A status buffer before any check: per check no NaN, no Inf, a first index of none. */
const CHECKS_CLEARED = new Uint32Array(4 * CHECKS_PER_STATUS).map((_, i) => (i % 4 === 2 ? 0xffffffff : 0));

/** A recorded finiteness check: where it counts, and what a failure says. */
interface FiniteCheck {
  status: Tensor;
  slot: number;
  describe: (found: NonFinite) => string;
}

/** What a finiteness check found. */
export interface NonFinite {
  nans: number;
  infs: number;
  /** Flat index of the first non-finite value. */
  first: number;
}

/** "1 non-finite value (Inf at index 1234)", "3 non-finite values (2 NaN, 1 Inf; the first at index 17)". */
export function describeNonFinite({ nans, infs, first }: NonFinite): string {
  const count = nans + infs;
  const kinds = [nans && `${nans} NaN`, infs && `${infs} Inf`].filter(Boolean).join(', ');
  return count === 1 ? `1 non-finite value (${nans ? 'NaN' : 'Inf'} at index ${first})` : `${count} non-finite values (${kinds}; the first at index ${first})`;
}

export interface ProgramOptions {
  /** Keep every tensor passed to tap() for reading back (debug / golden tests). */
  keepTaps?: boolean;
  /**
   * Debug: fill each activation's memory with NaN right after its last dispatch whenever another
   * activation reuses that memory later in the pass, so that a plan that frees memory too early
   * shows as NaN outputs (or a failed finiteness check). Default: DUALTOKEN_POISON=1 in the
   * environment. Only runs are poisoned (not profiles).
   */
  poison?: boolean;
}

/** An activation's lifetime: the first and the last dispatch that bind it (any view or slice of it). */
interface Lifetime {
  act: Activation;
  first: number;
  last: number;
  /** Dispatches recorded when it was allocated (the lifetime of one no dispatch binds). */
  at: number;
  /** Its last dispatch writes it: a result nothing in the pass reads, kept to the end (for reading back). */
  endsInWrite: boolean;
}

/** One buffer of the plan: its size and the activations that use it, in dispatch order, lifetimes disjoint. */
interface Slot {
  bytes: number;
  tenants: Lifetime[];
}

/** Where the activations live: pinned ones in buffers of their own, the others in shared slots. */
interface MemoryPlan {
  slots: Slot[];
  pinned: Lifetime[];
  bytes: number;
}

const roundUp16 = (n: number) => Math.ceil(n / 16) * 16;

function planBytes(slots: Slot[], pinned: Lifetime[]): number {
  return slots.reduce((s, slot) => s + roundUp16(slot.bytes), 0) + pinned.reduce((s, l) => s + roundUp16(l.act.bytes), 0);
}

const overlaps = (a: Lifetime, b: Lifetime) => a.first <= b.last && b.first <= a.last;

/**
 * In order of first use, each activation takes the smallest free buffer that holds it, else the
 * largest free one (grown to fit), else a new one.
 */
function planByFirstUse(lifetimes: Lifetime[]): Slot[] {
  const slots: Slot[] = [];
  const order = [...lifetimes].sort((a, b) => a.first - b.first || a.act.id - b.act.id);
  for (const l of order) {
    let fit: Slot | undefined;
    let largest: Slot | undefined;
    for (const slot of slots) {
      if (slot.tenants[slot.tenants.length - 1].last >= l.first) continue; // still in use
      if (slot.bytes >= l.act.bytes && (!fit || slot.bytes < fit.bytes)) fit = slot;
      if (!largest || slot.bytes > largest.bytes) largest = slot;
    }
    const slot = fit ?? largest;
    if (slot) {
      slot.bytes = Math.max(slot.bytes, l.act.bytes);
      slot.tenants.push(l);
    } else slots.push({ bytes: l.act.bytes, tenants: [l] });
  }
  return slots;
}

/**
 * Largest first (greedy by size): each activation takes the smallest buffer none of whose
 * activations' lifetimes overlaps its own (every buffer is at least as large), else a new one.
 */
function planBySize(lifetimes: Lifetime[]): Slot[] {
  const slots: Slot[] = [];
  const order = [...lifetimes].sort((a, b) => b.act.bytes - a.act.bytes || a.first - b.first || a.act.id - b.act.id);
  for (const l of order) {
    let best: Slot | undefined;
    for (const slot of slots) {
      if (best && slot.bytes >= best.bytes) continue;
      if (!slot.tenants.some((t) => overlaps(t, l))) best = slot;
    }
    if (best) best.tenants.push(l);
    else slots.push({ bytes: l.act.bytes, tenants: [l] });
  }
  for (const slot of slots) slot.tenants.sort((a, b) => a.first - b.first);
  return slots;
}

/** NaN (quiet), as the poison of freed memory. */
const NAN_BITS = 0x7fc00000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The fastest steady wall time of a kind of submission (the first pays for the driver's shader
 * JIT and is not counted), used to wait without polling: Dawn's Node binding polls the device in
 * a busy loop while a promise of it is pending, which on a CPU adapter takes a core from the
 * driver. Sleeping through most of the fastest run seen so far before asking for the result
 * leaves that core to the GPU work, and never oversleeps a run that is as fast as the fastest one.
 */
class FastestRun {
  private runs = 0;
  private ms = Infinity;
  record(ms: number): void {
    if (this.runs++ > 0) this.ms = Math.min(this.ms, ms);
  }
  async idleUntilNearlyDone(): Promise<void> {
    if (this.ms > 20 && this.ms < Infinity) await sleep(this.ms * 0.85);
  }
}

export class Program {
  private readonly ops: Op[] = [];
  private uniformBytes = new Uint8Array(4096);
  private uniformSize = 0;
  private readonly owned: GPUBuffer[] = [];
  /** Every activation alloc() gave, with the dispatches that bind it (first, last; -1 before any). */
  private readonly activations: Lifetime[] = [];
  private readonly lifetimeOf = new Map<Activation, Lifetime>();
  /** Test hook (shortenLifetimeForTest): activations whose last use the planner is told is earlier. */
  private readonly shortened = new Map<Activation, number>();
  /** The plan of the activations' memory, made when the program is finalized (nothing records after). */
  private memoryPlan?: MemoryPlan;
  /** Poisoning (ProgramOptions.poison): the buffers to fill with NaN after each dispatch, and the NaN source. */
  private poisonAfter?: Map<number, GPUBuffer[]>;
  private nanBuffer?: GPUBuffer;
  private readonly taps = new Map<string, Tensor>();
  private planned?: Planned[];
  private finalizing?: Promise<void>;
  private uniformBuffer?: GPUBuffer;
  /** Settles when the last run / profile queued so far has finished (see exclusive). */
  private lastTurn: Promise<unknown> = Promise.resolve();
  /** WebGPU's verdicts on the work runNow submitted while recording: finalize() awaits them. */
  private readonly submittedNow: Promise<unknown>[] = [];
  private readonly finiteChecks: FiniteCheck[] = [];
  /** Status buffers (CHECKS_PER_STATUS checks each) of the checks recorded for every run: cleared before each. */
  private readonly runStatuses: Tensor[] = [];
  /** Status buffers of the checks submitted at once (checkFinite `now`): cleared once, at creation. */
  private readonly nowStatuses: Tensor[] = [];

  /**
   * Called by the ops when they have made a packed layout of a weight (ops.packedWeight): the
   * model may free the original there (DualToken does, when nothing will read it again).
   */
  onPacked?: (original: Tensor) => void;

  /** Keep every tensor passed to tap() for reading back (debug / golden tests). */
  readonly keepTaps: boolean;
  /** Fill freed activation memory with NaN in runs (ProgramOptions.poison). */
  readonly poison: boolean;

  constructor(
    readonly kernels: KernelLibrary,
    readonly label: string,
    /** Options, or just keepTaps. */
    options: boolean | ProgramOptions = false,
  ) {
    const opts = typeof options === 'boolean' ? { keepTaps: options } : options;
    this.keepTaps = opts.keepTaps ?? false;
    this.poison = opts.poison ?? (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.DUALTOKEN_POISON === '1';
  }

  get gpu(): Gpu {
    return this.kernels.gpu;
  }

  get dispatchCount(): number {
    return this.ops.length;
  }

  /** The distinct kernels (pipelines) its dispatches use. */
  kernelInfos(): KernelInfo[] {
    return [...new Map(this.ops.map((op) => [op.info.key, op.info])).values()];
  }

  /**
   * GPU memory this program owns: its activations' buffers (before finalize, as the dispatches
   * recorded so far would be planned), its status buffers and its uniform block.
   */
  get allocatedBytes(): number {
    const planned = this.memoryPlan ? 0 : this.planMemory().bytes;
    return this.owned.reduce((s, b) => s + b.size, 0) + planned + Math.ceil(this.uniformSize / 16) * 16;
  }

  /** Every buffer a recorded dispatch binds (weights, packed weights; activations once finalized). */
  boundBuffers(): Set<GPUBuffer> {
    const out = new Set<GPUBuffer>();
    for (const op of this.ops) {
      for (const t of Object.values(op.bind)) {
        const b = t.activation ? t.activation.buffer : t.buffer;
        if (b) out.add(b);
      }
    }
    return out;
  }

  /** The recorded work of each dispatch (FLOPs, bytes). */
  costs(): Cost[] {
    return this.ops.map((op) => op.cost);
  }

  /**
   * An activation: a tensor whose memory the program plans when it is finalized, from the
   * dispatches that bind it (it may share a buffer with activations used only before its first
   * dispatch or only after its last one). Pin it (`t.pinned = true`) if it is read outside the
   * recorded dispatches (run()'s read list, a later copy): pinned activations get buffers of
   * their own.
   */
  alloc(shape: number[], label: string, dtype: GpuDType = 'f32'): Tensor {
    if (this.memoryPlan) throw new Error(`${this.label}: alloc '${label}' after the program was finalized`);
    const bytes = Math.max(4, shape.reduce((a, b) => a * b, 1) * 4);
    const limit = this.gpu.limits.maxBufferSize;
    if (bytes > limit) throw new Error(`${this.label}: activation '${label}' ${shapeStr(shape)} needs ${bytes} bytes, over the adapter's maxBufferSize ${limit}`);
    const act = new Activation(this, this.activations.length, bytes, label);
    const l = { act, first: -1, last: -1, at: this.ops.length, endsInWrite: false };
    this.activations.push(l);
    this.lifetimeOf.set(act, l);
    return new Tensor(act, shape, dtype, 0, label);
  }

  /**
   * Test hook: the planner is told that the last use of `t` (or of every activation labelled so)
   * comes `dispatches` dispatches earlier than recorded: a wrong plan, which a poisoned run must
   * show as NaN. Before finalize().
   */
  shortenLifetimeForTest(t: Tensor | string, dispatches = 1): void {
    const acts = typeof t === 'string' ? this.activations.filter((l) => l.act.label === t).map((l) => l.act) : t.activation ? [t.activation] : [];
    if (!acts.length) throw new Error(`${this.label}: ${typeof t === 'string' ? t : t.label} is not an activation of this program`);
    for (const act of acts) this.shortened.set(act, dispatches);
  }

  /** The memory plan in numbers (finalize() makes it; before, the plan of what is recorded so far). */
  planSummary(): { activations: number; pinned: number; sharedBuffers: number; bytes: number; poisonFills: number } {
    const plan = this.planMemory();
    let poisonFills = 0;
    for (const list of this.poisonAfter?.values() ?? []) poisonFills += list.length;
    return { activations: this.activations.length, pinned: plan.pinned.length, sharedBuffers: plan.slots.length, bytes: plan.bytes, poisonFills };
  }

  /**
   * The activations' lifetimes -> buffers: pinned activations alone, the others in shared
   * buffers, by whichever of two greedy interval assignments needs fewer bytes (planByFirstUse,
   * planBySize). A buffer is as large as its largest activation; two activations share it only if no dispatch binds both lifetimes' ranges (lifetimes are inclusive: one
   * ending at dispatch i and one starting at i never share). An activation whose last dispatch
   * writes it (nothing in the pass reads that: a result, e.g. an op's output in a test) lives to
   * the end of the pass, so that it can be read back even unpinned.
   */
  private planMemory(): MemoryPlan {
    if (this.memoryPlan) return this.memoryPlan;
    const pinned: Lifetime[] = [];
    const shared: Lifetime[] = [];
    for (const l of this.activations) {
      if (l.act.pinned) pinned.push(l);
      else if (l.first < 0) shared.push({ ...l, first: l.at, last: l.at }); // bound by nothing: any buffer
      else {
        const cut = this.shortened.get(l.act) ?? 0;
        if (cut) shared.push({ ...l, last: Math.max(l.first, l.last - cut) });
        else shared.push(l.endsInWrite ? { ...l, last: this.ops.length } : l);
      }
    }
    const byFirstUse = planByFirstUse(shared);
    const bySize = planBySize(shared);
    const slots = planBytes(bySize, []) < planBytes(byFirstUse, []) ? bySize : byFirstUse;
    return { slots, pinned, bytes: planBytes(slots, pinned) };
  }

  /**
   * Plans the activations' memory and creates its buffers (finalize): from then on nothing more
   * is recorded. With poisoning, each activation that another one follows in its buffer gets
   * its buffer filled with NaN right after its last dispatch.
   */
  private assignMemory(): void {
    if (this.memoryPlan) return;
    const plan = this.planMemory();
    this.memoryPlan = plan;
    for (const l of plan.pinned) l.act.buffer = this.createBuffer(l.act.bytes, l.act.label);
    for (const slot of plan.slots) {
      const names = slot.tenants.map((t) => t.act.label);
      const label = names.length > 1 ? `${names[0]} (+${names.length - 1} more)` : names[0];
      const buffer = this.createBuffer(slot.bytes, label);
      for (const t of slot.tenants) t.act.buffer = buffer;
    }
    if (!this.poison) return;
    this.poisonAfter = new Map();
    let largest = 0;
    for (const slot of plan.slots) {
      const buffer = slot.tenants[0].act.buffer!;
      for (const t of slot.tenants.slice(0, -1)) {
        const list = this.poisonAfter.get(t.last) ?? [];
        list.push(buffer);
        this.poisonAfter.set(t.last, list);
        largest = Math.max(largest, buffer.size);
      }
    }
    if (largest > 0) {
      const nan = this.gpu.device.createBuffer({ label: `${this.label}/poison (NaN)`, size: largest, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
      new Uint32Array(nan.getMappedRange()).fill(NAN_BITS);
      nan.unmap();
      this.nanBuffer = nan;
    }
  }

  /**
   * Refuses to read back an activation whose memory a later activation of the pass reuses (its
   * content is gone by the end of the run): read tensors must be pinned before finalize().
   */
  private checkReadable(read: Tensor[]): void {
    for (const t of read) {
      const act = t.activation;
      if (!act || act.pinned || !this.memoryPlan) continue;
      if (act.owner !== this) continue; // another program's: its own run decides
      const slot = this.memoryPlan.slots.find((s) => s.tenants.some((l) => l.act === act));
      const next = slot && slot.tenants[slot.tenants.findIndex((l) => l.act === act) + 1];
      if (next) {
        throw new Error(`${this.label}: cannot read '${t.label}' after the run: it is not pinned, and '${next.act.label}' reuses its memory after its last dispatch; pin it (t.pinned = true) before finalize()`);
      }
    }
  }

  /** A new buffer of the program's own (destroy() frees it). */
  private createBuffer(bytes: number, label: string): GPUBuffer {
    const buffer = this.gpu.device.createBuffer({
      label: `${this.label}/${label}`,
      size: Math.ceil(bytes / 16) * 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.owned.push(buffer);
    return buffer;
  }

  /** Names an intermediate so that it can be read back when the program keeps taps. */
  tap(name: string, t: Tensor): void {
    if (!this.keepTaps) return;
    t.pinned = true;
    this.taps.set(name, t);
  }

  tapNames(): string[] {
    return [...this.taps.keys()];
  }

  tapped(name: string): Tensor {
    const t = this.taps.get(name);
    if (!t) throw new Error(`${this.label}: no tap named '${name}' (program built with keepTaps=${this.keepTaps})`);
    return t;
  }

  /** Records one dispatch; bindings and uniforms are checked against the reflected WGSL now. */
  dispatch(spec: DispatchSpec): void {
    if (this.memoryPlan) throw new Error(`${this.label}: dispatch '${spec.kernel}' after the program was finalized`);
    const info = this.kernels.info(spec.kernel, spec.defines, spec.constants);
    this.checkBindings(info, spec.bind);
    const uniformOffset = info.uniform ? this.pushUniforms(info, spec.uniforms ?? {}) : -1;
    if (!info.uniform && spec.uniforms && Object.keys(spec.uniforms).length) {
      throw new Error(`kernel '${info.name}': has no uniform block but was given ${Object.keys(spec.uniforms)}`);
    }
    this.extendLifetimes(info, spec.bind);
    this.ops.push({ info, bind: { ...spec.bind }, uniformOffset, groups: this.fold(info.name, spec.groups), cost: spec.cost ?? {} });
  }

  /** The activations bound by the dispatch about to be recorded live at least until it. */
  private extendLifetimes(info: KernelInfo, bind: Record<string, Tensor>): void {
    const index = this.ops.length;
    for (const [name, t] of Object.entries(bind)) {
      const l = t.activation && this.lifetimeOf.get(t.activation);
      if (!l) continue;
      const writes = info.bindings.some((b) => b.name === name && b.kind === 'storage');
      if (l.first < 0) l.first = index;
      l.endsInWrite = l.last === index ? l.endsInWrite || writes : writes;
      l.last = index;
    }
  }

  /**
   * Records a check that `t` holds only finite values (check_finite): a run in which it finds
   * some fails with `${label}: ${describe(what it found)}`. With `now` the check is submitted at
   * once (runNow: a weight checked while the next ones upload) instead of with every run, and
   * every run reports it.
   */
  checkFinite(t: Tensor, describe: (found: NonFinite) => string, now = false): void {
    const { status, slot } = this.statusSlot(now);
    const n = t.numel;
    const spec = { kernel: 'check_finite', uniforms: { n, slot }, bind: { x: t, status }, groups: Math.min(4096, Math.ceil(n / 256)) };
    if (now) this.runNow(spec);
    else this.dispatch({ ...spec, cost: { bytes: 4 * n } });
    this.finiteChecks.push({ status, slot, describe });
  }

  /** The next free check slot, in a new status buffer when the last one is full. */
  private statusSlot(now: boolean): { status: Tensor; slot: number } {
    const list = now ? this.nowStatuses : this.runStatuses;
    const slot = this.finiteChecks.filter((c) => list.includes(c.status)).length % CHECKS_PER_STATUS;
    if (slot === 0) {
      // Never an activation: an earlier dispatch of the pass could write a shared buffer.
      const status = new Tensor(this.createBuffer(16 * CHECKS_PER_STATUS, 'finite checks'), [4 * CHECKS_PER_STATUS], 'u32', 0, 'finite checks');
      status.pinned = true;
      if (now) this.gpu.device.queue.writeBuffer(status.buffer, 0, CHECKS_CLEARED);
      list.push(status);
    }
    return { status: list[list.length - 1], slot };
  }

  private checkBindings(info: KernelInfo, bind: Record<string, Tensor>): void {
    const maxBinding = this.gpu.limits.maxStorageBufferBindingSize;
    const align = this.gpu.limits.minStorageBufferOffsetAlignment;
    const wanted = info.bindings.filter((b) => b.kind !== 'uniform').map((b) => b.name);
    for (const name of Object.keys(bind)) {
      if (!wanted.includes(name)) throw new Error(`kernel '${info.name}': no storage binding named '${name}' (it has ${wanted.join(', ')})`);
    }
    for (const name of wanted) {
      const t = bind[name];
      if (!t) throw new Error(`kernel '${info.name}': binding '${name}' was not given`);
      const act = t.activation;
      if (act && act.owner !== this) throw new Error(`kernel '${info.name}': binding '${name}' (${t.label}) is an activation of another program`);
      const why = act ? undefined : releasedWhy(t.buffer);
      if (why) throw new Error(`kernel '${info.name}': binding '${name}' (${t.label}) ${why}`);
      if (t.byteLength > maxBinding) {
        throw new Error(`kernel '${info.name}': binding '${name}' (${t.label} ${shapeStr(t.shape)}, ${t.byteLength} bytes) exceeds the adapter's maxStorageBufferBindingSize ${maxBinding}`);
      }
      if (t.offset % align !== 0) throw new Error(`kernel '${info.name}': binding '${name}' offset ${t.offset} is not a multiple of ${align}`);
    }
  }

  private pushUniforms(info: KernelInfo, values: Record<string, number>): number {
    const u = info.uniform!;
    const align = this.gpu.limits.minUniformBufferOffsetAlignment;
    const offset = Math.ceil(this.uniformSize / align) * align;
    const size = Math.ceil(u.size / 16) * 16;
    while (offset + size > this.uniformBytes.length) {
      const grown = new Uint8Array(this.uniformBytes.length * 2);
      grown.set(this.uniformBytes);
      this.uniformBytes = grown;
    }
    writeUniforms(info, values, new DataView(this.uniformBytes.buffer, offset, size));
    this.uniformSize = offset + size;
    return offset;
  }

  private fold(kernel: string, groups: number | [number, number, number]): [number, number, number] {
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (Array.isArray(groups)) {
      if (groups.some((g) => g > max)) throw new Error(`kernel '${kernel}': grid ${groups} exceeds ${max} per dimension`);
      return groups;
    }
    if (groups <= max) return [Math.max(1, groups), 1, 1];
    const y = Math.ceil(groups / max);
    if (y > max) throw new Error(`kernel '${kernel}': ${groups} workgroups cannot be folded into two dimensions of ${max}`);
    return [max, y, 1];
  }

  /**
   * Records one dispatch and submits it now, on its own, ahead of the program's runs (one-time
   * weight preparation while a program is being recorded, which cannot wait for anything): its
   * pipeline is the library's cached one, created and submitted inside error scopes; WebGPU's
   * verdict on both is awaited by finalize(), so an error fails the program's first run naming
   * the kernel.
   */
  runNow(spec: Omit<DispatchSpec, 'cost'>): void {
    if (this.memoryPlan) throw new Error(`${this.label}: runNow '${spec.kernel}' after the program was finalized`);
    const { device } = this.gpu;
    const info = this.kernels.info(spec.kernel, spec.defines, spec.constants);
    this.checkBindings(info, spec.bind);
    for (const [name, t] of Object.entries(spec.bind)) {
      if (t.activation) throw new Error(`kernel '${info.name}' (run now): binding '${name}' (${t.label}) is an activation, whose memory exists only in the program's runs`);
    }
    const groups = this.fold(info.name, spec.groups);
    const { kernel, ready } = this.kernels.compileNow(info);
    const submitted = this.gpu.bracket(`kernel '${info.name}' (run now)`, () => {
      const u = info.uniform && device.createBuffer({ label: `${info.name} uniforms`, size: Math.ceil(info.uniform.size / 16) * 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      if (u) {
        const bytes = new Uint8Array(u.size);
        writeUniforms(info, spec.uniforms ?? {}, new DataView(bytes.buffer));
        device.queue.writeBuffer(u, 0, bytes);
      }
      const bindGroup = device.createBindGroup({ label: info.name, layout: kernel.layout, entries: this.bindEntries(info, spec.bind, u && { buffer: u, offset: 0 }) });
      const encoder = device.createCommandEncoder({ label: info.name });
      const pass = encoder.beginComputePass({ label: info.name });
      pass.setPipeline(kernel.pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...groups);
      pass.end();
      device.queue.submit([encoder.finish()]);
      u?.destroy(); // freed once the submitted work is done
    });
    for (const p of [ready, submitted.checked]) {
      p.catch(() => {}); // reported by finalize()
      this.submittedNow.push(p);
    }
  }

  /** The bind group entries of a dispatch: its tensors by binding name, the uniform block at `uniform`. */
  private bindEntries(info: KernelInfo, bind: Record<string, Tensor>, uniform?: { buffer: GPUBuffer; offset: number }): GPUBindGroupEntry[] {
    return info.bindings.map((b) => {
      if (b.kind === 'uniform') return { binding: b.binding, resource: { ...uniform!, size: info.uniform!.size } };
      const t = bind[b.name];
      return { binding: b.binding, resource: { buffer: t.buffer, offset: t.offset, size: t.byteLength } };
    });
  }

  /** Compiles the pipelines, uploads the uniforms and creates every bind group, once. */
  finalize(): Promise<void> {
    this.finalizing ??= this.plan();
    return this.finalizing;
  }

  private async plan(): Promise<void> {
    const gpu = this.gpu;
    this.assignMemory(); // synchronously: nothing is recorded after finalize()
    await Promise.all(this.submittedNow);
    const compiled = await Promise.all(this.ops.map((op) => this.kernels.compile(op.info)));
    this.planned = await gpu.scoped(`${this.label}: creating bind groups`, () => {
      const uniformBuffer = gpu.device.createBuffer({
        label: `${this.label}/uniforms`,
        size: Math.max(256, Math.ceil(this.uniformSize / 16) * 16),
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      this.uniformBuffer = uniformBuffer;
      gpu.device.queue.writeBuffer(uniformBuffer, 0, this.uniformBytes, 0, Math.ceil(this.uniformSize / 4) * 4);
      return this.ops.map((op, i) => {
        const kernel = compiled[i];
        const entries = this.bindEntries(op.info, op.bind, { buffer: uniformBuffer, offset: op.uniformOffset });
        return { kernel, bindGroup: gpu.device.createBindGroup({ label: op.info.name, layout: kernel.layout, entries }), groups: op.groups, cost: op.cost };
      });
    });
  }

  /**
   * Encodes every dispatch into one compute pass of `encoder` (with poisoning, the pass ends
   * after each dispatch that frees memory, for the NaN fill).
   */
  encode(encoder: GPUCommandEncoder): void {
    if (!this.planned) throw new Error(`${this.label}: finalize() before encode()`);
    let pass = encoder.beginComputePass({ label: this.label });
    for (const [i, p] of this.planned.entries()) {
      pass.setPipeline(p.kernel.pipeline);
      pass.setBindGroup(0, p.bindGroup);
      pass.dispatchWorkgroups(p.groups[0], p.groups[1], p.groups[2]);
      const poisoned = this.poisonAfter?.get(i);
      if (poisoned && this.nanBuffer) {
        pass.end();
        for (const b of poisoned) encoder.copyBufferToBuffer(this.nanBuffer, 0, b, 0, b.size);
        pass = encoder.beginComputePass({ label: this.label });
      }
    }
    pass.end();
  }

  /**
   * Runs the whole program once and reads back the given tensors (one sync point). `prelude`
   * encodes work that must come first in the same command buffer (e.g. preprocessing that
   * fills this program's input, or writes its input: it runs at this run's turn, see exclusive).
   */
  run(read: Tensor[] = [], prelude?: (encoder: GPUCommandEncoder) => void): Promise<ArrayBuffer[]> {
    return this.exclusive(async () => {
      await this.finalize();
      this.checkReadable(read);
      try {
        const statuses = [...this.runStatuses, ...this.nowStatuses];
        const out = await this.submit([...read, ...statuses], prelude);
        const found = out.splice(read.length);
        this.throwIfNonFinite(new Map(statuses.map((t, i) => [t, found[i]])));
        return out;
      } catch (e) {
        const culprit = e instanceof DeviceLostError || e instanceof NonFiniteError ? undefined : await this.findFailingDispatch();
        if (culprit) throw new Error(`${this.label}: ${culprit}`);
        throw e;
      }
    });
  }

  /**
   * Runs `fn` once every run or profile queued before it has finished (whatever its outcome):
   * they share this program's buffers, so one at a time.
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const mine = this.lastTurn.then(fn);
    this.lastTurn = mine.catch(() => {});
    return mine;
  }

  /** Throws the first failed finiteness check of a run, given its status buffers as read back. */
  private throwIfNonFinite(statuses: Map<Tensor, ArrayBuffer>): void {
    for (const check of this.finiteChecks) {
      const [nans, infs, first] = new Uint32Array(statuses.get(check.status)!, 16 * check.slot, 3);
      if (nans + infs > 0) throw new NonFiniteError(`${this.label}: ${check.describe({ nans, infs, first })}`);
    }
  }

  /** Validates each dispatch in a pass of its own, to name the kernel behind a failed run. */
  private async findFailingDispatch(): Promise<string | undefined> {
    const { device } = this.gpu;
    for (const [i, p] of this.planned!.entries()) {
      device.pushErrorScope('validation');
      const encoder = device.createCommandEncoder({ label: `${this.label} check #${i}` });
      const pass = encoder.beginComputePass();
      pass.setPipeline(p.kernel.pipeline);
      pass.setBindGroup(0, p.bindGroup);
      pass.dispatchWorkgroups(p.groups[0], p.groups[1], p.groups[2]);
      pass.end();
      encoder.finish();
      const error = await device.popErrorScope();
      if (error) return `kernel '${p.kernel.info.name}' (dispatch #${i}): validation error: ${error.message}`;
    }
    return undefined;
  }

  /**
   * One submission inside error scopes that hold only the synchronous encoding and submit;
   * the scopes' verdict, then the readback, are awaited after (a lost device rejects them).
   */
  private async submit(read: Tensor[], prelude?: (encoder: GPUCommandEncoder) => void): Promise<ArrayBuffer[]> {
    const { device } = this.gpu;
    const what = `${this.label}: run`;
    const start = performance.now();
    const staging: GPUBuffer[] = [];
    try {
      await this.gpu.scoped(what, () => {
        for (const status of this.runStatuses) device.queue.writeBuffer(status.buffer, status.offset, CHECKS_CLEARED);
        const encoder = device.createCommandEncoder({ label: this.label });
        prelude?.(encoder);
        this.encode(encoder);
        for (const t of read) {
          const b = device.createBuffer({ label: `${this.label}/read ${t.label}`, size: Math.ceil(t.byteLength / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
          encoder.copyBufferToBuffer(t.buffer, t.offset, b, 0, b.size);
          staging.push(b);
        }
        device.queue.submit([encoder.finish()]);
      });
      await this.runWait.idleUntilNearlyDone();
      const out: ArrayBuffer[] = [];
      for (const b of staging) {
        await this.gpu.untilLost(what, b.mapAsync(GPUMapMode.READ));
        out.push(b.getMappedRange().slice(0));
      }
      if (!staging.length) await this.gpu.untilLost(what, device.queue.onSubmittedWorkDone());
      this.runWait.record(performance.now() - start);
      return out;
    } finally {
      for (const b of staging) b.destroy();
    }
  }

  /** The fastest steady plain run and profiled run so far. */
  private readonly runWait = new FastestRun();
  private readonly profileWait = new FastestRun();

  /**
   * Runs the program once with every dispatch timed: GPU timestamps (one pass per dispatch)
   * where the adapter has timestamp-query, else (or with clock 'wall') wall clock around each
   * dispatch on its own, submitted alone: a first such profile on a CPU driver, which compiles
   * each pipeline at its first dispatch, shows the compile times (bench/cold-start.ts).
   */
  profile(clock: 'auto' | 'wall' = 'auto'): Promise<{ timings: DispatchTiming[]; source: 'timestamp-query' | 'wall-clock' }> {
    return this.exclusive(async () => {
      await this.finalize();
      const planned = this.planned!;
      if (clock === 'auto' && this.gpu.has('timestamp-query')) return { timings: await this.profileWithTimestamps(planned), source: 'timestamp-query' as const };
      const timings: DispatchTiming[] = [];
      for (const p of planned) {
        const start = performance.now();
        await this.gpu.scoped(`${this.label}: profile ${p.kernel.info.name}`, () => {
          const encoder = this.gpu.device.createCommandEncoder();
          const pass = encoder.beginComputePass();
          pass.setPipeline(p.kernel.pipeline);
          pass.setBindGroup(0, p.bindGroup);
          pass.dispatchWorkgroups(...p.groups);
          pass.end();
          this.gpu.device.queue.submit([encoder.finish()]);
        });
        await this.gpu.untilLost(`${this.label}: profile`, this.gpu.device.queue.onSubmittedWorkDone());
        timings.push({ kernel: p.kernel.info.name, pipeline: p.kernel.info.key, ms: performance.now() - start, cost: p.cost });
      }
      return { timings, source: 'wall-clock' as const };
    });
  }

  private async profileWithTimestamps(planned: Planned[]): Promise<DispatchTiming[]> {
    const { device } = this.gpu;
    const what = `${this.label}: profile`;
    const count = planned.length * 2;
    const querySet = device.createQuerySet({ type: 'timestamp', count });
    const resolve = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      const start = performance.now();
      await this.gpu.scoped(what, () => {
        const encoder = device.createCommandEncoder({ label: `${this.label} profile` });
        planned.forEach((p, i) => {
          const pass = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
          pass.setPipeline(p.kernel.pipeline);
          pass.setBindGroup(0, p.bindGroup);
          pass.dispatchWorkgroups(...p.groups);
          pass.end();
        });
        encoder.resolveQuerySet(querySet, 0, count, resolve, 0);
        encoder.copyBufferToBuffer(resolve, 0, read, 0, count * 8);
        device.queue.submit([encoder.finish()]);
      });
      await this.profileWait.idleUntilNearlyDone();
      await this.gpu.untilLost(what, read.mapAsync(GPUMapMode.READ));
      this.profileWait.record(performance.now() - start);
      const ns = new BigUint64Array(read.getMappedRange().slice(0));
      return planned.map((p, i) => ({ kernel: p.kernel.info.name, pipeline: p.kernel.info.key, ms: Number(ns[2 * i + 1] - ns[2 * i]) / 1e6, cost: p.cost }));
    } finally {
      read.destroy();
      resolve.destroy();
      querySet.destroy();
    }
  }

  /** Frees every activation buffer and the uniforms (weights and inputs are not the program's). */
  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.uniformBuffer?.destroy();
    this.nanBuffer?.destroy();
    this.owned.length = 0;
  }
}

/** Writes a kernel's uniform values, checked against its reflected struct, into `view`. */
function writeUniforms(info: KernelInfo, values: Record<string, number>, view: DataView): void {
  const u = info.uniform!;
  const names = new Set(u.members.map((m) => m.name));
  for (const k of Object.keys(values)) {
    if (!names.has(k)) throw new Error(`kernel '${info.name}': uniform '${u.name}' has no member '${k}'`);
  }
  for (const m of u.members) {
    const v = values[m.name];
    if (v === undefined || !Number.isFinite(v)) throw new Error(`kernel '${info.name}': uniform member '${m.name}' needs a finite value (got ${v})`);
    if (m.type === 'f32') view.setFloat32(m.offset, v, true);
    else if (m.type === 'u32') {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`kernel '${info.name}': u32 '${m.name}' = ${v} is out of range`);
      view.setUint32(m.offset, v, true);
    } else {
      if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new Error(`kernel '${info.name}': i32 '${m.name}' = ${v} is out of range`);
      view.setInt32(m.offset, v, true);
    }
  }
}
