// A view of GPU memory with a shape. Activations live in pooled buffers owned by a Program;
// weights and program inputs/outputs own their buffers.
import { numel } from './tensor-source.js';

export type GpuDType = 'f32' | 'i32' | 'u32';

export class Tensor {
  /** Set on tensors that must survive the program (outputs, debug taps): never recycled. */
  pinned = false;

  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: number[],
    readonly dtype: GpuDType = 'f32',
    /** Byte offset of element 0 in `buffer`. */
    readonly offset = 0,
    readonly label = buffer.label,
  ) {}

  get numel(): number {
    return numel(this.shape);
  }

  get byteLength(): number {
    return this.numel * 4;
  }

  /** The same memory seen with another shape of the same element count. */
  view(shape: number[]): Tensor {
    if (numel(shape) !== this.numel) throw new Error(`${this.label}: cannot view [${this.shape}] as [${shape}]`);
    const t = new Tensor(this.buffer, shape, this.dtype, this.offset, this.label);
    t.pinned = this.pinned;
    return t;
  }
}

/** Buffers freed while tensors (and views) of them may still exist, with the reason. */
const released = new WeakMap<GPUBuffer, string>();

/** Destroys `buffer` and remembers why, so that a later dispatch binding it fails with that reason. */
export function releaseBuffer(buffer: GPUBuffer, why: string): void {
  released.set(buffer, why);
  buffer.destroy();
}

/** Why `buffer` was released, or undefined while it is live. */
export function releasedWhy(buffer: GPUBuffer): string | undefined {
  return released.get(buffer);
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
