// A Program is one forward pass recorded once and replayed: every dispatch with its pipeline,
// bind group and uniforms is planned up front; activations get their memory when the program is
// finalized, from their lifetimes in the recorded dispatches (two whose lifetimes do not overlap
// may share a buffer: memory.ts, planner.ts); a run is one command buffer with one readback at the
// end. Runs (and profiles) of one program take turns: they share its activations and outputs,
// so one's input write, submission and readback complete before the next one's start; different
// programs run concurrently. Finiteness checks (checkFinite, finite.ts) count non-finite values
// into small status buffers read back with the outputs: a run that finds one fails naming the
// check. A dispatch's checks and encoding: dispatch.ts; timing: profiler.ts.
import { DeviceLostError, type Gpu } from './gpu.js';
import { bindEntries, checkBindings, encodeDispatch, foldGroups, UniformBlock, writeUniforms, type Cost, type DispatchSpec, type PlannedDispatch } from './dispatch.js';
import { FiniteChecks, NonFiniteError, type NonFinite } from './finite.js';
import { KernelLibrary, type KernelInfo } from './kernels.js';
import { ActivationMemory } from './memory.js';
import { FastestRun, profileByTimestamps, profileByWallClock, type DispatchTiming } from './profiler.js';
import type { GpuDType, Tensor } from './tensor.js';

export { modelFlops, type Cost, type DispatchSpec } from './dispatch.js';
export { NonFiniteError, describeNonFinite, type NonFinite } from './finite.js';
export type { DispatchTiming } from './profiler.js';

interface Op {
  info: KernelInfo;
  bind: Record<string, Tensor>;
  uniformOffset: number;
  groups: [number, number, number];
  cost: Cost;
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

export class Program {
  private readonly ops: Op[] = [];
  private readonly uniforms = new UniformBlock();
  /** The activations and their buffers (made at finalize), the program's other buffers. */
  private readonly memory: ActivationMemory;
  private readonly taps = new Map<string, Tensor>();
  private planned?: PlannedDispatch[];
  private finalizing?: Promise<void>;
  private uniformBuffer?: GPUBuffer;
  /** Settles when the last run / profile queued so far has finished (see exclusive). */
  private lastTurn: Promise<unknown> = Promise.resolve();
  /** WebGPU's verdicts on the work runNow submitted while recording: finalize() awaits them. */
  private readonly submittedNow: Promise<unknown>[] = [];
  private readonly finite = new FiniteChecks(
    (bytes, label) => this.memory.createBuffer(bytes, label),
    () => this.gpu.device.queue,
  );
  /** The fastest steady plain run and profiled run so far. */
  private readonly runWait = new FastestRun();
  private readonly profileWait = new FastestRun();

  /**
   * Called by the ops when they have made a packed layout of a weight (src/ops/packing.ts): the
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
    this.memory = new ActivationMemory(this, kernels.gpu, label);
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
    return this.memory.bytes(this.ops.length) + Math.ceil(this.uniforms.size / 16) * 16;
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
    if (this.memory.assigned) throw new Error(`${this.label}: alloc '${label}' after the program was finalized`);
    return this.memory.alloc(shape, label, dtype, this.ops.length);
  }

  /**
   * Test hook: the planner is told that the last use of `t` (or of every activation labelled so)
   * comes `dispatches` dispatches earlier than recorded: a wrong plan, which a poisoned run must
   * show as NaN. Before finalize().
   */
  shortenLifetimeForTest(t: Tensor | string, dispatches = 1): void {
    this.memory.shorten(t, dispatches);
  }

  /** The memory plan in numbers (finalize() makes it; before, the plan of what is recorded so far). */
  planSummary(): { activations: number; pinned: number; sharedBuffers: number; bytes: number; poisonFills: number } {
    return this.memory.summary(this.ops.length);
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
    if (this.memory.assigned) throw new Error(`${this.label}: dispatch '${spec.kernel}' after the program was finalized`);
    const info = this.kernels.info(spec.kernel, spec.defines, spec.constants);
    checkBindings(info, spec.bind, this.gpu.limits, this);
    const uniformOffset = info.uniform ? this.uniforms.push(info, spec.uniforms ?? {}, this.gpu.limits.minUniformBufferOffsetAlignment) : -1;
    if (!info.uniform && spec.uniforms && Object.keys(spec.uniforms).length) {
      throw new Error(`kernel '${info.name}': has no uniform block but was given ${Object.keys(spec.uniforms)}`);
    }
    // The activations bound by the dispatch about to be recorded live at least until it.
    for (const [name, t] of Object.entries(spec.bind)) {
      if (t.activation) this.memory.lifetimes.extend(t.activation, this.ops.length, info.bindings.some((b) => b.name === name && b.kind === 'storage'));
    }
    this.ops.push({ info, bind: { ...spec.bind }, uniformOffset, groups: this.fold(info.name, spec.groups), cost: spec.cost ?? {} });
  }

  /**
   * Records a check that `t` holds only finite values (check_finite): a run in which it finds
   * some fails with `${label}: ${describe(what it found)}`. With `now` the check is submitted at
   * once (runNow: a weight checked while the next ones upload) instead of with every run, and
   * every run reports it.
   */
  checkFinite(t: Tensor, describe: (found: NonFinite) => string, now = false): void {
    this.finite.add(now, describe, (status, slot) => {
      const n = t.numel;
      const spec = { kernel: 'check_finite', uniforms: { n, slot }, bind: { x: t, status }, groups: Math.min(4096, Math.ceil(n / 256)) };
      if (now) this.runNow(spec);
      else this.dispatch({ ...spec, cost: { bytes: 4 * n } });
    });
  }

  private fold(kernel: string, groups: number | [number, number, number]): [number, number, number] {
    return foldGroups(kernel, groups, this.gpu.limits.maxComputeWorkgroupsPerDimension);
  }

  /**
   * Records one dispatch and submits it now, on its own, ahead of the program's runs (one-time
   * weight preparation while a program is being recorded, which cannot wait for anything): its
   * pipeline is the library's cached one, created and submitted inside error scopes; WebGPU's
   * verdict on both is awaited by finalize(), so an error fails the program's first run naming
   * the kernel.
   */
  runNow(spec: Omit<DispatchSpec, 'cost'>): void {
    if (this.memory.assigned) throw new Error(`${this.label}: runNow '${spec.kernel}' after the program was finalized`);
    const { device } = this.gpu;
    const info = this.kernels.info(spec.kernel, spec.defines, spec.constants);
    checkBindings(info, spec.bind, this.gpu.limits, this);
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
      const bindGroup = device.createBindGroup({ label: info.name, layout: kernel.layout, entries: bindEntries(info, spec.bind, u && { buffer: u, offset: 0 }) });
      const encoder = device.createCommandEncoder({ label: info.name });
      const pass = encoder.beginComputePass({ label: info.name });
      encodeDispatch(pass, { kernel, bindGroup, groups, cost: {} });
      pass.end();
      device.queue.submit([encoder.finish()]);
      u?.destroy(); // freed once the submitted work is done
    });
    for (const p of [ready, submitted.checked]) {
      p.catch(() => {}); // reported by finalize()
      this.submittedNow.push(p);
    }
  }

  /** Compiles the pipelines, uploads the uniforms and creates every bind group, once. */
  finalize(): Promise<void> {
    this.finalizing ??= this.plan();
    return this.finalizing;
  }

  private async plan(): Promise<void> {
    const gpu = this.gpu;
    this.memory.assign(this.ops.length, this.poison); // synchronously: nothing is recorded after finalize()
    await Promise.all(this.submittedNow);
    const compiled = await Promise.all(this.ops.map((op) => this.kernels.compile(op.info)));
    this.planned = await gpu.scoped(`${this.label}: creating bind groups`, () => {
      const uniformBuffer = gpu.device.createBuffer({
        label: `${this.label}/uniforms`,
        size: Math.max(256, Math.ceil(this.uniforms.size / 16) * 16),
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      this.uniformBuffer = uniformBuffer;
      gpu.device.queue.writeBuffer(uniformBuffer, 0, this.uniforms.bytes, 0, Math.ceil(this.uniforms.size / 4) * 4);
      return this.ops.map((op, i) => {
        const kernel = compiled[i];
        const entries = bindEntries(op.info, op.bind, { buffer: uniformBuffer, offset: op.uniformOffset });
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
      encodeDispatch(pass, p);
      if (this.memory.poisonAfterDispatch(i, encoder, pass)) pass = encoder.beginComputePass({ label: this.label });
    }
    pass.end();
  }

  /**
   * Runs the whole program once and reads back the given tensors (one sync point). `prelude`
   * encodes work that must come first in the same command buffer (e.g. preprocessing that
   * fills this program's input, or writes its input: it runs at this run's turn, see exclusive).
   * `wait`: 'sleep' (default) sleeps through most of the fastest run seen before waiting, so a
   * CPU adapter keeps every core (Dawn's Node binding polls in a busy loop while a map is
   * pending); 'spin' waits at once, as other engines on Dawn do (the kernel lab times both ways).
   */
  run(read: Tensor[] = [], prelude?: (encoder: GPUCommandEncoder) => void, wait: 'sleep' | 'spin' = 'sleep'): Promise<ArrayBuffer[]> {
    return this.exclusive(async () => {
      await this.finalize();
      this.memory.checkReadable(read);
      try {
        const statuses = this.finite.statuses;
        const out = await this.submit([...read, ...statuses], prelude, wait);
        this.finite.throwIfFound(this.label, statuses, out.splice(read.length));
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

  /** Validates each dispatch in a pass of its own, to name the kernel behind a failed run. */
  private async findFailingDispatch(): Promise<string | undefined> {
    const { device } = this.gpu;
    for (const [i, p] of this.planned!.entries()) {
      device.pushErrorScope('validation');
      const encoder = device.createCommandEncoder({ label: `${this.label} check #${i}` });
      const pass = encoder.beginComputePass();
      encodeDispatch(pass, p);
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
  private async submit(read: Tensor[], prelude: ((encoder: GPUCommandEncoder) => void) | undefined, wait: 'sleep' | 'spin'): Promise<ArrayBuffer[]> {
    const { device } = this.gpu;
    const what = `${this.label}: run`;
    const start = performance.now();
    const staging: GPUBuffer[] = [];
    try {
      await this.gpu.scoped(what, () => {
        this.finite.clearForRun();
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
      if (wait === 'sleep') await this.runWait.idleUntilNearlyDone();
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
      if (clock === 'auto' && this.gpu.has('timestamp-query')) return { timings: await profileByTimestamps(this.gpu, this.label, planned, this.profileWait), source: 'timestamp-query' as const };
      return { timings: await profileByWallClock(this.gpu, this.label, planned), source: 'wall-clock' as const };
    });
  }

  /** Frees every activation buffer and the uniforms (weights and inputs are not the program's). */
  destroy(): void {
    this.memory.destroy();
    this.uniformBuffer?.destroy();
  }
}
