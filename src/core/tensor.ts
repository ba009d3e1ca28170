// A view of GPU memory with a shape. Activations (Program.alloc) are planned by their program:
// their memory is an Activation whose buffer is assigned when the program is finalized (two
// activations whose lifetimes do not overlap may share one); weights and program inputs/outputs
// own their buffers.
import { numel } from './tensor-source.js';

export type GpuDType = 'f32' | 'i32' | 'u32';

/**
 * One allocation of a Program (Program.alloc), shared by every tensor, view and slice of it: its
 * buffer is the program's to assign (at finalize), as is its lifetime (the first and last
 * dispatch that bind it).
 */
export class Activation {
  /** Set by the program when it assigns memory (finalize). */
  buffer?: GPUBuffer;
  /** Never shared with another activation (outputs, kept taps): its own buffer, live for the whole run. */
  pinned = false;

  constructor(
    /** The program that allocated it. */
    readonly owner: object,
    readonly id: number,
    /** Bytes it needs. */
    readonly bytes: number,
    readonly label: string,
  ) {}
}

export class Tensor {
  private ownPinned = false;

  constructor(
    /** Its own buffer, or the program activation whose buffer is assigned at finalize. */
    readonly memory: GPUBuffer | Activation,
    readonly shape: number[],
    readonly dtype: GpuDType = 'f32',
    /** Byte offset of element 0 in `buffer`. */
    readonly offset = 0,
    readonly label = memory.label,
  ) {}

  /** The program activation this tensor is (a view or a slice) of, if it is one. */
  get activation(): Activation | undefined {
    return this.memory instanceof Activation ? this.memory : undefined;
  }

  /** The GPU buffer; an activation's exists once its program is finalized. */
  get buffer(): GPUBuffer {
    const m = this.memory;
    if (!(m instanceof Activation)) return m;
    if (!m.buffer) throw new Error(`${this.label}: an activation has no buffer before its program is finalized (its memory is planned from the recorded dispatches)`);
    return m.buffer;
  }

  /**
   * Set on tensors that must survive the program (outputs, debug taps): never shared. For an
   * activation it holds for the allocation (every view and slice of it), and it is read when the
   * program is finalized.
   */
  get pinned(): boolean {
    return this.memory instanceof Activation ? this.memory.pinned : this.ownPinned;
  }

  set pinned(value: boolean) {
    if (this.memory instanceof Activation) this.memory.pinned = value;
    else this.ownPinned = value;
  }

  get numel(): number {
    return numel(this.shape);
  }

  get byteLength(): number {
    return this.numel * 4;
  }

  /** The same memory seen with another shape of the same element count. */
  view(shape: number[]): Tensor {
    if (numel(shape) !== this.numel) throw new Error(`${this.label}: cannot view [${this.shape}] as [${shape}]`);
    const t = new Tensor(this.memory, shape, this.dtype, this.offset, this.label);
    t.pinned = this.pinned;
    return t;
  }

  /** A part of the same memory: `shape` from byte `offset` of the buffer (split.ts binds ranges so). */
  at(shape: number[], offset: number): Tensor {
    return new Tensor(this.memory, shape, this.dtype, offset, this.label);
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

/** The size of t's last dimension (features, channels of a row). */
export function lastDim(t: Tensor): number {
  return t.shape[t.shape.length - 1];
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** x's dims as NCHW [B, C, H, W]; throws naming `op` when x is not 4-D. */
export function nchw(x: Tensor, op: string): [number, number, number, number] {
  if (x.shape.length !== 4) throw new Error(`${op}: input must be NCHW [B, C, H, W], got ${shapeStr(x.shape)}`);
  return x.shape as [number, number, number, number];
}
