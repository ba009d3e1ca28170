// Model weights on the GPU, by their official state_dict names. Tensors are read and uploaded
// one at a time (host memory stays near the size of the largest tensor), widened to f32, and
// checked for NaN / Inf on the GPU (a check_finite dispatch submitted per tensor as it arrives,
// so that the checks run while the next tensors are read; one readback after the last upload):
// a non-finite weight is refused, naming the tensor.
import { toFloat32 } from './dtype.js';
import type { Gpu } from './gpu.js';
import type { KernelLibrary } from './kernels.js';
import { packedBytes, releasePacked } from '../ops/packing.js';
import { Program, describeNonFinite } from './program.js';
import { Tensor, releaseBuffer, releasedWhy, shapeStr } from './tensor.js';
import type { TensorSource } from './tensor-source.js';

export interface LoadProgress {
  tensors: number;
  totalTensors: number;
  bytes: number;
  totalBytes: number;
}

export class Weights {
  private readonly tensors = new Map<string, Tensor>();
  /** f32 host copies load() kept for hostData (each handed over once). */
  private readonly host = new Map<string, Float32Array>();

  constructor(
    readonly gpu: Gpu,
    readonly source: TensorSource,
  ) {}

  /**
   * Uploads every tensor of the source that `used(name)` accepts, keeping a host copy of those
   * `keepOnHost(name)` accepts (for derived weights built at load: see hostData), so that no
   * tensor is read from the source twice. With `finite` (a kernel library), every uploaded
   * tensor is checked for NaN / Inf on the GPU and the first bad one is refused, named.
   * `uploaded(name, t)` hears of each tensor once it is uploaded (and its check submitted),
   * before the next is read: e.g. to pack it and free the original (TextTower, precision f16).
   */
  async load(
    used: (name: string) => boolean,
    onProgress?: (p: LoadProgress) => void,
    keepOnHost: (name: string) => boolean = () => false,
    finite?: KernelLibrary,
    uploaded?: (name: string, t: Tensor) => void,
  ): Promise<void> {
    const names = this.source.names().filter(used);
    const totalBytes = names.reduce((s, n) => s + this.source.info(n)!.byteLength, 0);
    const check = finite && new Program(finite, this.source.label);
    let bytes = 0;
    try {
      for (const [i, name] of names.entries()) {
        const info = this.source.info(name)!;
        const data = toFloat32(await this.source.read(name), info.dtype, `${this.source.label}: tensor '${name}'`);
        const t = this.set(name, info.shape, data);
        check?.checkFinite(t, (found) => `tensor '${name}' has ${describeNonFinite(found)}`, true);
        uploaded?.(name, t);
        if (keepOnHost(name)) this.host.set(name, data);
        bytes += info.byteLength;
        onProgress?.({ tensors: i + 1, totalTensors: names.length, bytes, totalBytes });
      }
      await check?.run();
    } finally {
      check?.destroy();
    }
  }

  /** Uploads `data` as the weight `name` (also used for tensors derived at load time). */
  set(name: string, shape: number[], data: Float32Array): Tensor {
    const limit = this.gpu.limits.maxStorageBufferBindingSize;
    if (data.byteLength > limit) {
      throw new Error(`${this.source.label}: tensor '${name}' ${shapeStr(shape)} is ${data.byteLength} bytes, over the adapter's maxStorageBufferBindingSize ${limit}`);
    }
    const old = this.tensors.get(name);
    if (old) {
      releasePacked(old.buffer);
      old.buffer.destroy();
    }
    const buffer = this.gpu.device.createBuffer({
      label: name,
      size: Math.max(16, Math.ceil(data.byteLength / 16) * 16),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    this.gpu.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    const t = new Tensor(buffer, shape, 'f32', 0, name);
    t.pinned = true;
    this.tensors.set(name, t);
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** A loaded weight; `shape`, when given, is checked (a mismatch names the tensor). */
  get(name: string, shape?: number[]): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.source.label}: missing tensor '${name}'`);
    if (shape && (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i]))) {
      throw new Error(`${this.source.label}: tensor '${name}' has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
    }
    return t;
  }

  /** A source tensor as f32 on the host: the copy load() kept (handed over once), else read now. */
  async hostData(name: string): Promise<Float32Array> {
    const kept = this.host.get(name);
    if (kept) {
      this.host.delete(name);
      return kept;
    }
    const info = this.source.info(name);
    if (!info) throw new Error(`${this.source.label}: missing tensor '${name}'`);
    return toFloat32(await this.source.read(name), info.dtype, `${this.source.label}: tensor '${name}'`);
  }

  /** Concatenates source tensors along dim 0 into a new weight (e.g. packed qkv biases). */
  async concat(name: string, parts: string[]): Promise<Tensor> {
    const arrays: Float32Array[] = [];
    let rows = 0;
    let rest: number[] | undefined;
    for (const part of parts) {
      const info = this.source.info(part);
      if (!info) throw new Error(`${this.source.label}: missing tensor '${part}'`);
      arrays.push(await this.hostData(part));
      rows += info.shape[0];
      rest ??= info.shape.slice(1);
    }
    const out = new Float32Array(arrays.reduce((s, a) => s + a.length, 0));
    let at = 0;
    for (const a of arrays) {
      out.set(a, at);
      at += a.length;
    }
    return this.set(name, [rows, ...(rest ?? [])], out);
  }

  /** Bytes of the weights as loaded that are still held on the GPU. */
  get byteLength(): number {
    let s = 0;
    for (const t of this.tensors.values()) if (!releasedWhy(t.buffer)) s += t.byteLength;
    return s;
  }

  /** Bytes of the packed layouts the ops made of the weights (src/ops/packing.ts). */
  get packedByteLength(): number {
    let s = 0;
    for (const t of this.tensors.values()) s += packedBytes(t.buffer);
    return s;
  }

  /**
   * Frees weight `t` (or the weight it views) when the ops keep it in a packed layout and no
   * recorded dispatch binds it (`bound`): the packed copy is all that later recordings read (the
   * ops bind it, never the original, in the variants that pack). A later dispatch binding a freed
   * weight fails naming it. Returns the bytes freed.
   */
  releaseOriginal(t: Tensor, bound: Set<GPUBuffer>): number {
    if (releasedWhy(t.buffer) || bound.has(t.buffer) || packedBytes(t.buffer) === 0) return 0;
    if (![...this.tensors.values()].some((own) => own.buffer === t.buffer)) return 0;
    const size = t.buffer.size;
    releaseBuffer(t.buffer, 'was freed once packed: only its packed layout is kept (the variant choice cannot change after the first recording)');
    return size;
  }

  /** releaseOriginal for every weight. */
  releasePackedOriginals(bound: Set<GPUBuffer>): number {
    let freed = 0;
    for (const t of this.tensors.values()) freed += this.releaseOriginal(t, bound);
    return freed;
  }

  /** Frees every weight and the packed layouts the ops made of them (src/ops/packing.ts). */
  destroy(): void {
    for (const t of this.tensors.values()) {
      releasePacked(t.buffer);
      t.buffer.destroy();
    }
    this.tensors.clear();
    this.host.clear();
  }
}
