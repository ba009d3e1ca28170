// A Program's GPU memory: its activations (alloc), their buffers once the plan (planner.ts) is made
// at finalize, its other buffers (status buffers), and the debug poisoning that fills an
// activation's buffer with NaN right after its last dispatch when a later activation reuses it.
import type { Gpu } from './gpu.js';
import { Lifetimes, poisonPoints, reusedBy, type MemoryPlan } from './planner.js';
import { Activation, Tensor, shapeStr, type GpuDType } from './tensor.js';

/** NaN (quiet), as the poison of freed memory. */
const NAN_BITS = 0x7fc00000;

export class ActivationMemory {
  /** Every activation alloc() gave, with the dispatches that bind it. */
  readonly lifetimes = new Lifetimes();
  /** The plan of the activations' memory, made when the program is finalized (nothing records after). */
  private memoryPlan?: MemoryPlan;
  /** Every buffer of the program's own (activations, status buffers). */
  private readonly owned: GPUBuffer[] = [];
  /** Poisoning: the buffers to fill with NaN after each dispatch, and the NaN source. */
  private poisonAfter?: Map<number, GPUBuffer[]>;
  private nanBuffer?: GPUBuffer;

  constructor(
    /** The program (activations' owner). */
    private readonly owner: object,
    private readonly gpu: Gpu,
    private readonly label: string,
  ) {}

  /** The plan is made: no more activations, nothing more recorded. */
  get assigned(): boolean {
    return this.memoryPlan !== undefined;
  }

  /** Bytes of the buffers created so far, plus (before the plan is made) the plan's for `dispatches` recorded. */
  bytes(dispatches: number): number {
    const planned = this.memoryPlan ? 0 : this.plan(dispatches).bytes;
    return this.owned.reduce((s, b) => s + b.size, 0) + planned;
  }

  /** A new activation, allocated when `at` dispatches are recorded (Program.alloc). */
  alloc(shape: number[], label: string, dtype: GpuDType, at: number): Tensor {
    const bytes = Math.max(4, shape.reduce((a, b) => a * b, 1) * 4);
    const limit = this.gpu.limits.maxBufferSize;
    if (bytes > limit) throw new Error(`${this.label}: activation '${label}' ${shapeStr(shape)} needs ${bytes} bytes, over the adapter's maxBufferSize ${limit}`);
    const act = new Activation(this.owner, this.lifetimes.all.length, bytes, label);
    this.lifetimes.add(act, at);
    return new Tensor(act, shape, dtype, 0, label);
  }

  /** Program.shortenLifetimeForTest. */
  shorten(t: Tensor | string, dispatches: number): void {
    const acts = typeof t === 'string' ? this.lifetimes.all.filter((l) => l.act.label === t).map((l) => l.act) : t.activation ? [t.activation] : [];
    if (!acts.length) throw new Error(`${this.label}: ${typeof t === 'string' ? t : t.label} is not an activation of this program`);
    for (const act of acts) this.lifetimes.shorten(act, dispatches);
  }

  /** Program.planSummary. */
  summary(dispatches: number): { activations: number; pinned: number; sharedBuffers: number; bytes: number; poisonFills: number } {
    const plan = this.plan(dispatches);
    let poisonFills = 0;
    for (const list of this.poisonAfter?.values() ?? []) poisonFills += list.length;
    return { activations: this.lifetimes.all.length, pinned: plan.pinned.length, sharedBuffers: plan.slots.length, bytes: plan.bytes, poisonFills };
  }

  /** The plan made by assign(), else the plan of the `dispatches` recorded so far. */
  private plan(dispatches: number): MemoryPlan {
    return this.memoryPlan ?? this.lifetimes.plan(dispatches);
  }

  /**
   * Plans the activations' memory and creates its buffers (finalize): from then on nothing more
   * is recorded. With `poison`, each activation that another one follows in its buffer gets its
   * buffer filled with NaN right after its last dispatch.
   */
  assign(dispatches: number, poison: boolean): void {
    if (this.memoryPlan) return;
    const plan = this.plan(dispatches);
    this.memoryPlan = plan;
    for (const l of plan.pinned) l.act.buffer = this.createBuffer(l.act.bytes, l.act.label);
    for (const slot of plan.slots) {
      const names = slot.tenants.map((t) => t.act.label);
      const label = names.length > 1 ? `${names[0]} (+${names.length - 1} more)` : names[0];
      const buffer = this.createBuffer(slot.bytes, label);
      for (const t of slot.tenants) t.act.buffer = buffer;
    }
    if (!poison) return;
    this.poisonAfter = new Map();
    let largest = 0;
    for (const [dispatch, slots] of poisonPoints(plan)) {
      const buffers = slots.map((slot) => slot.tenants[0].act.buffer!);
      this.poisonAfter.set(dispatch, buffers);
      for (const b of buffers) largest = Math.max(largest, b.size);
    }
    if (largest > 0) {
      const nan = this.gpu.device.createBuffer({ label: `${this.label}/poison (NaN)`, size: largest, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
      new Uint32Array(nan.getMappedRange()).fill(NAN_BITS);
      nan.unmap();
      this.nanBuffer = nan;
    }
  }

  /**
   * With poisoning: ends `pass` and encodes the NaN fills due after dispatch `i` into `encoder`
   * (true: the caller begins a new pass); false when none are due.
   */
  poisonAfterDispatch(i: number, encoder: GPUCommandEncoder, pass: GPUComputePassEncoder): boolean {
    const poisoned = this.poisonAfter?.get(i);
    if (!poisoned || !this.nanBuffer) return false;
    pass.end();
    for (const b of poisoned) encoder.copyBufferToBuffer(this.nanBuffer, 0, b, 0, b.size);
    return true;
  }

  /**
   * Refuses to read back an activation whose memory a later activation of the pass reuses (its
   * content is gone by the end of the run): read tensors must be pinned before finalize().
   */
  checkReadable(read: Tensor[]): void {
    for (const t of read) {
      const act = t.activation;
      if (!act || act.pinned || !this.memoryPlan) continue;
      if (act.owner !== this.owner) continue; // another program's: its own run decides
      const next = reusedBy(this.memoryPlan, act);
      if (next) {
        throw new Error(`${this.label}: cannot read '${t.label}' after the run: it is not pinned, and '${next.act.label}' reuses its memory after its last dispatch; pin it (t.pinned = true) before finalize()`);
      }
    }
  }

  /** A new buffer of the program's own (destroy() frees it). */
  createBuffer(bytes: number, label: string): GPUBuffer {
    const buffer = this.gpu.device.createBuffer({
      label: `${this.label}/${label}`,
      size: Math.ceil(bytes / 16) * 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.owned.push(buffer);
    return buffer;
  }

  /** Frees every buffer of the program's own and the NaN source. */
  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.nanBuffer?.destroy();
    this.owned.length = 0;
  }
}
