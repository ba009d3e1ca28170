// A Program is one forward pass recorded once and replayed: every dispatch with its pipeline,
// bind group and uniforms is planned up front, activations come from a pool that recycles a
// buffer as soon as its last reader is recorded, and a run is one command buffer with one
// readback at the end.
import type { Gpu } from './gpu.js';
import { KernelLibrary, type CompiledKernel, type Constants, type Defines, type KernelInfo } from './kernels.js';
import { Tensor, releasedWhy, shapeStr, type GpuDType } from './tensor.js';

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

/** One dispatch's measured time. */
export interface DispatchTiming {
  kernel: string;
  ms: number;
  cost: Cost;
}

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
  private readonly free: GPUBuffer[] = [];
  private readonly owned: GPUBuffer[] = [];
  private readonly taps = new Map<string, Tensor>();
  private planned?: Planned[];
  private uniformBuffer?: GPUBuffer;

  /**
   * Called by the ops when they have made a packed layout of a weight (ops.packedWeight): the
   * model may free the original there (DualToken does, when nothing will read it again).
   */
  onPacked?: (original: Tensor) => void;

  constructor(
    readonly kernels: KernelLibrary,
    readonly label: string,
    /** Keep every tensor passed to tap() for reading back (debug / golden tests). */
    readonly keepTaps = false,
  ) {}

  get gpu(): Gpu {
    return this.kernels.gpu;
  }

  get dispatchCount(): number {
    return this.ops.length;
  }

  /** GPU memory this program owns: pooled activations and its uniform block. */
  get allocatedBytes(): number {
    return this.owned.reduce((s, b) => s + b.size, 0) + Math.ceil(this.uniformSize / 16) * 16;
  }

  /** Every buffer a recorded dispatch binds (weights, packed weights, activations). */
  boundBuffers(): Set<GPUBuffer> {
    const out = new Set<GPUBuffer>();
    for (const op of this.ops) for (const t of Object.values(op.bind)) out.add(t.buffer);
    return out;
  }

  /** The recorded work of each dispatch (FLOPs, bytes). */
  costs(): Cost[] {
    return this.ops.map((op) => op.cost);
  }

  /** A pooled activation buffer; give it back with release() after its last use is recorded. */
  alloc(shape: number[], label: string, dtype: GpuDType = 'f32'): Tensor {
    const bytes = Math.max(4, shape.reduce((a, b) => a * b, 1) * 4);
    const limit = this.gpu.limits.maxBufferSize;
    if (bytes > limit) throw new Error(`${this.label}: activation '${label}' ${shapeStr(shape)} needs ${bytes} bytes, over the adapter's maxBufferSize ${limit}`);
    // Best fit among free buffers no more than twice the size needed.
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const s = this.free[i].size;
      if (s >= bytes && s <= 2 * bytes && (best < 0 || s < this.free[best].size)) best = i;
    }
    let buffer: GPUBuffer;
    if (best >= 0) {
      buffer = this.free.splice(best, 1)[0];
    } else {
      buffer = this.gpu.device.createBuffer({
        label: `${this.label}/${label}`,
        size: Math.ceil(bytes / 16) * 16,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      this.owned.push(buffer);
    }
    return new Tensor(buffer, shape, dtype, 0, label);
  }

  /** Returns activations to the pool. Pinned tensors (outputs, kept taps) are never recycled. */
  release(...tensors: Tensor[]): void {
    for (const t of tensors) {
      if (t.pinned || !this.owned.includes(t.buffer) || this.free.includes(t.buffer)) continue;
      if (this.planned) throw new Error(`${this.label}: release() after the program was finalized`);
      this.free.push(t.buffer);
    }
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
    if (this.planned) throw new Error(`${this.label}: dispatch '${spec.kernel}' after the program was finalized`);
    const info = this.kernels.info(spec.kernel, spec.defines, spec.constants);
    this.checkBindings(info, spec.bind);
    const uniformOffset = info.uniform ? this.pushUniforms(info, spec.uniforms ?? {}) : -1;
    if (!info.uniform && spec.uniforms && Object.keys(spec.uniforms).length) {
      throw new Error(`kernel '${info.name}': has no uniform block but was given ${Object.keys(spec.uniforms)}`);
    }
    this.ops.push({ info, bind: { ...spec.bind }, uniformOffset, groups: this.fold(info.name, spec.groups), cost: spec.cost ?? {} });
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
      const why = releasedWhy(t.buffer);
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
    const view = new DataView(this.uniformBytes.buffer, offset, size);
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

  /** Compiles the pipelines, uploads the uniforms and creates every bind group, once. */
  async finalize(): Promise<void> {
    if (this.planned) return;
    const gpu = this.gpu;
    const compiled = await Promise.all(this.ops.map((op) => this.kernels.compile(op.info)));
    this.uniformBuffer = gpu.device.createBuffer({
      label: `${this.label}/uniforms`,
      size: Math.max(256, Math.ceil(this.uniformSize / 16) * 16),
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    gpu.device.queue.writeBuffer(this.uniformBuffer, 0, this.uniformBytes, 0, Math.ceil(this.uniformSize / 4) * 4);
    const planned: Planned[] = [];
    await gpu.scoped(`${this.label}: creating bind groups`, () => {
      this.ops.forEach((op, i) => {
        const kernel = compiled[i];
        const entries: GPUBindGroupEntry[] = op.info.bindings.map((b) => {
          if (b.kind === 'uniform') {
            return { binding: b.binding, resource: { buffer: this.uniformBuffer!, offset: op.uniformOffset, size: op.info.uniform!.size } };
          }
          const t = op.bind[b.name];
          return { binding: b.binding, resource: { buffer: t.buffer, offset: t.offset, size: t.byteLength } };
        });
        planned.push({ kernel, bindGroup: gpu.device.createBindGroup({ label: op.info.name, layout: kernel.layout, entries }), groups: op.groups, cost: op.cost });
      });
    });
    this.planned = planned;
  }

  /** Encodes every dispatch into one compute pass of `encoder`. */
  encode(encoder: GPUCommandEncoder): void {
    if (!this.planned) throw new Error(`${this.label}: finalize() before encode()`);
    const pass = encoder.beginComputePass({ label: this.label });
    for (const p of this.planned) {
      pass.setPipeline(p.kernel.pipeline);
      pass.setBindGroup(0, p.bindGroup);
      pass.dispatchWorkgroups(p.groups[0], p.groups[1], p.groups[2]);
    }
    pass.end();
  }

  /**
   * Runs the whole program once and reads back the given tensors (one sync point). `prelude`
   * encodes work that must come first in the same command buffer (e.g. preprocessing that
   * fills this program's input).
   */
  async run(read: Tensor[] = [], prelude?: (encoder: GPUCommandEncoder) => void): Promise<ArrayBuffer[]> {
    await this.finalize();
    try {
      return await this.submit(read, prelude);
    } catch (e) {
      const culprit = await this.findFailingDispatch();
      if (culprit) throw new Error(`${this.label}: ${culprit}`);
      throw e;
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

  private submit(read: Tensor[], prelude?: (encoder: GPUCommandEncoder) => void): Promise<ArrayBuffer[]> {
    return this.gpu.scoped(`${this.label}: run`, async () => {
      const { device } = this.gpu;
      const start = performance.now();
      const encoder = device.createCommandEncoder({ label: this.label });
      prelude?.(encoder);
      this.encode(encoder);
      const staging = read.map((t) => {
        const b = device.createBuffer({ label: `${this.label}/read ${t.label}`, size: Math.ceil(t.byteLength / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        encoder.copyBufferToBuffer(t.buffer, t.offset, b, 0, b.size);
        return b;
      });
      device.queue.submit([encoder.finish()]);
      await this.runWait.idleUntilNearlyDone();
      const out: ArrayBuffer[] = [];
      for (const b of staging) {
        await b.mapAsync(GPUMapMode.READ);
        out.push(b.getMappedRange().slice(0));
        b.destroy();
      }
      if (!staging.length) await device.queue.onSubmittedWorkDone();
      this.runWait.record(performance.now() - start);
      return out;
    });
  }

  /** The fastest steady plain run and profiled run so far. */
  private readonly runWait = new FastestRun();
  private readonly profileWait = new FastestRun();

  /**
   * Runs the program once with every dispatch timed: GPU timestamps (one pass per dispatch)
   * where the adapter has timestamp-query, else wall clock around each dispatch on its own.
   */
  async profile(): Promise<{ timings: DispatchTiming[]; source: 'timestamp-query' | 'wall-clock' }> {
    await this.finalize();
    const planned = this.planned!;
    if (this.gpu.has('timestamp-query')) {
      const timings = await this.gpu.scoped(`${this.label}: profile`, () => this.profileWithTimestamps(planned));
      return { timings, source: 'timestamp-query' };
    }
    const timings: DispatchTiming[] = [];
    for (const p of planned) {
      const start = performance.now();
      const encoder = this.gpu.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(p.kernel.pipeline);
      pass.setBindGroup(0, p.bindGroup);
      pass.dispatchWorkgroups(...p.groups);
      pass.end();
      this.gpu.device.queue.submit([encoder.finish()]);
      await this.gpu.device.queue.onSubmittedWorkDone();
      timings.push({ kernel: p.kernel.info.name, ms: performance.now() - start, cost: p.cost });
    }
    return { timings, source: 'wall-clock' };
  }

  private async profileWithTimestamps(planned: Planned[]): Promise<DispatchTiming[]> {
    const { device } = this.gpu;
    const count = planned.length * 2;
    const querySet = device.createQuerySet({ type: 'timestamp', count });
    const resolve = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
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
    const start = performance.now();
    device.queue.submit([encoder.finish()]);
    await this.profileWait.idleUntilNearlyDone();
    await read.mapAsync(GPUMapMode.READ);
    this.profileWait.record(performance.now() - start);
    const ns = new BigUint64Array(read.getMappedRange().slice(0));
    read.destroy();
    resolve.destroy();
    querySet.destroy();
    return planned.map((p, i) => ({ kernel: p.kernel.info.name, ms: Number(ns[2 * i + 1] - ns[2 * i]) / 1e6, cost: p.cost }));
  }

  /** Frees every activation buffer and the uniforms (weights and inputs are not the program's). */
  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.uniformBuffer?.destroy();
    this.owned.length = 0;
    this.free.length = 0;
  }
}
