// Kernels: WGSL files from shaders/, reflected with wgsl_reflect so that every binding and
// uniform member is known by name; explicit bind-group layouts; pipelines cached by
// (kernel, placeholders, override constants).
//
// Placeholders are `{{NAME}}` in the WGSL text, for the few values WGSL needs at
// shader-creation time (private array sizes, workgroup sizes). Everything else is a uniform.
//
// Pipelines are created synchronously (createComputePipeline) unless the library is asked for
// `asyncPipelines` (the browser entry does): then createComputePipelineAsync, started as soon as a
// dispatch of the kernel is recorded, so a program's pipelines compile in parallel, off the page's
// thread, while the rest is recorded and the weights are packed. Never in Node: dawn.node's
// createComputePipelineAsync never settles (npm webgpu 0.6.2).
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { Gpu } from './gpu.js';

/** Kernel name (file name without .wgsl) -> WGSL source. */
export type ShaderSources = Record<string, string>;

export type Defines = Record<string, number | string>;
export type Constants = Record<string, number>;

export interface UniformMember {
  name: string;
  offset: number;
  type: 'u32' | 'i32' | 'f32';
}

export interface BindingSlot {
  name: string;
  binding: number;
  kind: 'uniform' | 'read-only-storage' | 'storage';
}

/** A kernel's reflected interface: known before any pipeline exists. */
export interface KernelInfo {
  key: string;
  name: string;
  code: string;
  entryPoint: string;
  workgroupSize: [number, number, number];
  bindings: BindingSlot[];
  uniform?: { name: string; binding: number; size: number; members: UniformMember[] };
  constants: Constants;
}

export interface CompiledKernel {
  info: KernelInfo;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

/** A pipeline created now, and the promise that WebGPU found nothing wrong with it. */
export interface Compilation {
  kernel: CompiledKernel;
  /** Resolves once the WGSL compiled and the creation raised no WebGPU error; rejects naming the kernel. */
  ready: Promise<CompiledKernel>;
}

export interface KernelLibraryOptions {
  /**
   * Create pipelines with createComputePipelineAsync, each started when the first dispatch of its
   * kernel is recorded (browsers: compiled in parallel, off the page's thread). Default: false,
   * or true for a device passed to useAsyncPipelines(). Never in Node's Dawn (npm webgpu 0.6.2),
   * where createComputePipelineAsync never settles.
   */
  asyncPipelines?: boolean;
}

const asyncDevices = new WeakSet<Gpu>();

/** Libraries created on this device from now on create their pipelines asynchronously, or not (`on` false). The browser entry calls it. */
export function useAsyncPipelines(gpu: Gpu, on = true): void {
  if (on) asyncDevices.add(gpu);
  else asyncDevices.delete(gpu);
}

export class KernelLibrary {
  private readonly infos = new Map<string, KernelInfo>();
  /** Pipelines created synchronously, and asynchronous ones once created. */
  private readonly compiled = new Map<string, Compilation>();
  /** Pipelines being created asynchronously (asyncPipelines). */
  private readonly pending = new Map<string, Promise<CompiledKernel>>();
  readonly asyncPipelines: boolean;

  constructor(
    readonly gpu: Gpu,
    private readonly sources: ShaderSources,
    opts: KernelLibraryOptions = {},
  ) {
    this.asyncPipelines = opts.asyncPipelines ?? asyncDevices.has(gpu);
  }

  /**
   * The reflected interface of `name` with these placeholders and constants (cached). With
   * asyncPipelines, a kernel reflected for the first time starts its pipeline's creation right
   * after the synchronous code that asked (the recording of a program), unless that code
   * created it synchronously meanwhile (compileNow).
   */
  info(name: string, defines: Defines = {}, constants: Constants = {}): KernelInfo {
    const key = `${name}|${stableJson(defines)}|${stableJson(constants)}`;
    let info = this.infos.get(key);
    if (!info) {
      info = reflect(name, key, this.source(name, defines), constants);
      this.infos.set(key, info);
      if (this.asyncPipelines) {
        const started = info;
        queueMicrotask(() => void this.compile(started).catch(() => {})); // errors: reported to whoever awaits compile()
      }
    }
    return info;
  }

  /** Compiles (once) the pipeline of a reflected kernel; errors name the kernel. */
  async compile(info: KernelInfo): Promise<CompiledKernel> {
    const done = this.compiled.get(info.key);
    if (done) return done.ready;
    if (!this.asyncPipelines) return this.compileNow(info).ready;
    let p = this.pending.get(info.key);
    if (!p) {
      p = this.createAsync(info);
      this.pending.set(info.key, p);
      p.then(
        (kernel) => {
          this.pending.delete(info.key);
          if (!this.compiled.has(info.key)) this.compiled.set(info.key, { kernel, ready: Promise.resolve(kernel) });
        },
        () => this.pending.delete(info.key), // a later compile() tries again (and fails again, naming the kernel)
      );
    }
    return p;
  }

  /**
   * The pipeline of a reflected kernel, created (once) synchronously, for work submitted while
   * a program is being recorded (Program.runNow); `ready` says whether WebGPU accepted it.
   * (With asyncPipelines, one whose asynchronous creation has not finished yet is created
   * synchronously too: this caller cannot wait.)
   */
  compileNow(info: KernelInfo): Compilation {
    let c = this.compiled.get(info.key);
    if (!c) {
      c = this.create(info);
      this.compiled.set(info.key, c);
    }
    return c;
  }

  private source(name: string, defines: Defines): string {
    const text = this.sources[name];
    if (text === undefined) throw new Error(`kernel '${name}': no shader named ${name}.wgsl`);
    const used = new Set<string>();
    const code = text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
      if (!(key in defines)) throw new Error(`kernel '${name}': placeholder {{${key}}} needs a value`);
      used.add(key);
      return String(defines[key]);
    });
    for (const key of Object.keys(defines)) {
      if (!used.has(key)) throw new Error(`kernel '${name}': no placeholder {{${key}}} in ${name}.wgsl`);
    }
    return code;
  }

  /**
   * Module, layout and pipeline inside one error scope with no await in it (pipelines of a
   * program compile in parallel: a scope held open across an await would catch another
   * kernel's errors); the WGSL compiler's messages are read after.
   */
  private create(info: KernelInfo): Compilation {
    const { device } = this.gpu;
    const what = `kernel '${info.name}'`;
    const created = this.gpu.bracket(what, () => {
      const { module, layout, pipelineLayout } = moduleAndLayout(device, info);
      // Synchronous creation: dawn.node's createComputePipelineAsync never settles (seen with webgpu 0.6.2).
      const pipeline = device.createComputePipeline({ label: info.name, layout: pipelineLayout, compute: { module, entryPoint: info.entryPoint, constants: info.constants } });
      return { module, kernel: { info, pipeline, layout } };
    });
    const { module, kernel } = created.result;
    const compilation = this.gpu.untilLost(what, module.getCompilationInfo());
    const ready = Promise.allSettled([compilation, created.checked]).then(([wgsl, scopes]) => {
      const errors = wgsl.status === 'fulfilled' ? wgsl.value.messages.filter((m) => m.type === 'error') : [];
      if (errors.length) throw new Error(`${what}: WGSL does not compile: ${errors.map((m) => `line ${m.lineNum}: ${m.message}`).join('; ')}`);
      if (scopes.status === 'rejected') throw scopes.reason;
      if (wgsl.status === 'rejected') throw wgsl.reason;
      return kernel;
    });
    ready.catch(() => {}); // reported to whoever awaits it (compile, Program.finalize)
    return { kernel, ready };
  }

  /**
   * createComputePipelineAsync. Module and layouts are created inside one error scope with no
   * await in it, as in create(); the pipeline's own errors are not a scope's: its promise
   * rejects (a GPUPipelineError), and that rejection is reported naming the kernel. The WGSL
   * compiler's messages, when it has any, say more than either and are reported first.
   */
  private async createAsync(info: KernelInfo): Promise<CompiledKernel> {
    const { device } = this.gpu;
    const what = `kernel '${info.name}'`;
    const created = this.gpu.bracket(what, () => moduleAndLayout(device, info));
    const { module, layout, pipelineLayout } = created.result;
    const pipeline = this.gpu.untilLost(
      what,
      device.createComputePipelineAsync({ label: info.name, layout: pipelineLayout, compute: { module, entryPoint: info.entryPoint, constants: info.constants } }).catch((e: unknown) => {
        const reason = (e as { reason?: string }).reason;
        throw new Error(`${what}: pipeline creation failed${reason ? ` (${reason})` : ''}: ${(e as Error)?.message ?? e}`);
      }),
    );
    const compilation = this.gpu.untilLost(what, module.getCompilationInfo());
    const [wgsl, scopes, made] = await Promise.allSettled([compilation, created.checked, pipeline]);
    const errors = wgsl.status === 'fulfilled' ? wgsl.value.messages.filter((m) => m.type === 'error') : [];
    if (errors.length) throw new Error(`${what}: WGSL does not compile: ${errors.map((m) => `line ${m.lineNum}: ${m.message}`).join('; ')}`);
    if (scopes.status === 'rejected') throw scopes.reason;
    if (made.status === 'rejected') throw made.reason;
    if (wgsl.status === 'rejected') throw wgsl.reason;
    return { info, pipeline: made.value, layout };
  }
}

/** A kernel's shader module, its bind-group layout (from the reflected bindings) and pipeline layout. */
function moduleAndLayout(device: GPUDevice, info: KernelInfo): { module: GPUShaderModule; layout: GPUBindGroupLayout; pipelineLayout: GPUPipelineLayout } {
  const module = device.createShaderModule({ label: info.name, code: info.code });
  const layout = device.createBindGroupLayout({
    label: info.name,
    entries: info.bindings.map((b) => ({ binding: b.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: b.kind } })),
  });
  return { module, layout, pipelineLayout: device.createPipelineLayout({ label: info.name, bindGroupLayouts: [layout] }) };
}

function reflect(name: string, key: string, code: string, constants: Constants): KernelInfo {
  let r: WgslReflect;
  try {
    r = new WgslReflect(code);
  } catch (e) {
    throw new Error(`kernel '${name}': WGSL does not parse: ${(e as Error).message}`);
  }
  const entries = r.entry.compute;
  if (entries.length !== 1) throw new Error(`kernel '${name}': expected one @compute entry point, found ${entries.length}`);
  const entry = entries[0];
  const overrides = new Set(r.overrides.map((o) => o.name));
  for (const c of Object.keys(constants)) {
    if (!overrides.has(c)) throw new Error(`kernel '${name}': no override constant '${c}'`);
  }
  const bindings: BindingSlot[] = [];
  let uniform: KernelInfo['uniform'];
  for (const u of r.uniforms) {
    if (u.group !== 0) throw new Error(`kernel '${name}': only bind group 0 is used (${u.name})`);
    if (uniform) throw new Error(`kernel '${name}': at most one uniform block (${uniform.name}, ${u.name})`);
    const members = (u.type as unknown as { members?: { name: string; offset: number; type: { name: string } }[] }).members;
    if (!members) throw new Error(`kernel '${name}': uniform '${u.name}' must be a struct`);
    uniform = {
      name: u.name,
      binding: u.binding,
      size: u.type.size,
      members: members.map((m) => {
        const t = m.type.name;
        if (t !== 'u32' && t !== 'i32' && t !== 'f32') throw new Error(`kernel '${name}': uniform member ${m.name} has type ${t}; use u32, i32 or f32`);
        return { name: m.name, offset: m.offset, type: t };
      }),
    };
    bindings.push({ name: u.name, binding: u.binding, kind: 'uniform' });
  }
  for (const s of r.storage) {
    if (s.group !== 0) throw new Error(`kernel '${name}': only bind group 0 is used (${s.name})`);
    bindings.push({ name: s.name, binding: s.binding, kind: s.access === 'read' ? 'read-only-storage' : 'storage' });
  }
  bindings.sort((a, b) => a.binding - b.binding);
  const ws = entry.workgroupSize ?? [1, 1, 1];
  const workgroupSize: [number, number, number] = [Number(ws[0] ?? 1), Number(ws[1] ?? 1), Number(ws[2] ?? 1)];
  if (workgroupSize.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`kernel '${name}': @workgroup_size must be literal integers (got ${ws})`);
  return { key, name, code, entryPoint: entry.name, workgroupSize, bindings, uniform, constants };
}

function stableJson(o: Record<string, unknown>): string {
  return JSON.stringify(Object.keys(o).sort().map((k) => [k, o[k]]));
}
