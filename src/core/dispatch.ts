// One dispatch of a Program (program.ts): what an op records (DispatchSpec, its Cost), the checks
// of its bindings and uniforms against the reflected WGSL, the uniform block the program's
// dispatches share, the folding of a workgroup count into x/y, and a planned dispatch's encoding.
import type { CompiledKernel, Constants, Defines, KernelInfo } from './kernels.js';
import { releasedWhy, shapeStr, type Tensor } from './tensor.js';

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

/** A dispatch ready to encode: its pipeline, bind group and grid (Program.finalize makes them). */
export interface PlannedDispatch {
  kernel: CompiledKernel;
  bindGroup: GPUBindGroup;
  groups: [number, number, number];
  cost: Cost;
}

/** Sets the pipeline and bind group of `p` on `pass` and dispatches its grid. */
export function encodeDispatch(pass: GPUComputePassEncoder, p: PlannedDispatch): void {
  pass.setPipeline(p.kernel.pipeline);
  pass.setBindGroup(0, p.bindGroup);
  pass.dispatchWorkgroups(p.groups[0], p.groups[1], p.groups[2]);
}

/**
 * Checks a dispatch's storage bindings against the kernel's: every one given and no other, no
 * activation of another program than `owner`, no released buffer, each within the binding size
 * limit and at an aligned offset.
 */
export function checkBindings(info: KernelInfo, bind: Record<string, Tensor>, limits: GPUSupportedLimits, owner: object): void {
  const maxBinding = limits.maxStorageBufferBindingSize;
  const align = limits.minStorageBufferOffsetAlignment;
  const wanted = info.bindings.filter((b) => b.kind !== 'uniform').map((b) => b.name);
  for (const name of Object.keys(bind)) {
    if (!wanted.includes(name)) throw new Error(`kernel '${info.name}': no storage binding named '${name}' (it has ${wanted.join(', ')})`);
  }
  for (const name of wanted) {
    const t = bind[name];
    if (!t) throw new Error(`kernel '${info.name}': binding '${name}' was not given`);
    const act = t.activation;
    if (act && act.owner !== owner) throw new Error(`kernel '${info.name}': binding '${name}' (${t.label}) is an activation of another program`);
    const why = act ? undefined : releasedWhy(t.buffer);
    if (why) throw new Error(`kernel '${info.name}': binding '${name}' (${t.label}) ${why}`);
    if (t.byteLength > maxBinding) {
      throw new Error(`kernel '${info.name}': binding '${name}' (${t.label} ${shapeStr(t.shape)}, ${t.byteLength} bytes) exceeds the adapter's maxStorageBufferBindingSize ${maxBinding}`);
    }
    if (t.offset % align !== 0) throw new Error(`kernel '${info.name}': binding '${name}' offset ${t.offset} is not a multiple of ${align}`);
  }
}

/** The bind group entries of a dispatch: its tensors by binding name, the uniform block at `uniform`. */
export function bindEntries(info: KernelInfo, bind: Record<string, Tensor>, uniform?: { buffer: GPUBuffer; offset: number }): GPUBindGroupEntry[] {
  return info.bindings.map((b) => {
    if (b.kind === 'uniform') return { binding: b.binding, resource: { ...uniform!, size: info.uniform!.size } };
    const t = bind[b.name];
    return { binding: b.binding, resource: { buffer: t.buffer, offset: t.offset, size: t.byteLength } };
  });
}

/** A workgroup count as a grid: a number over `max` is folded into x and y. */
export function foldGroups(kernel: string, groups: number | [number, number, number], max: number): [number, number, number] {
  if (Array.isArray(groups)) {
    if (groups.some((g) => g > max)) throw new Error(`kernel '${kernel}': grid ${groups} exceeds ${max} per dimension`);
    return groups;
  }
  if (groups <= max) return [Math.max(1, groups), 1, 1];
  const y = Math.ceil(groups / max);
  if (y > max) throw new Error(`kernel '${kernel}': ${groups} workgroups cannot be folded into two dimensions of ${max}`);
  return [max, y, 1];
}

/** The uniform values of every recorded dispatch, each at an aligned offset of one block. */
export class UniformBlock {
  bytes = new Uint8Array(4096);
  size = 0;

  /** Writes a dispatch's uniform values (checked) at the next offset that is a multiple of `align`; returns it. */
  push(info: KernelInfo, values: Record<string, number>, align: number): number {
    const offset = Math.ceil(this.size / align) * align;
    const size = Math.ceil(info.uniform!.size / 16) * 16;
    while (offset + size > this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    writeUniforms(info, values, new DataView(this.bytes.buffer, offset, size));
    this.size = offset + size;
    return offset;
  }
}

/** Writes a kernel's uniform values, checked against its reflected struct, into `view`. */
export function writeUniforms(info: KernelInfo, values: Record<string, number>, view: DataView): void {
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
