// What every op's cases share: seeded inputs uploaded as pinned tensors, sample positions, and
// the one rel-to-max comparison (the tests' helpers re-export it).
import type { Gpu } from '../core/gpu.js';
import { seeded } from '../core/random.js';
import { Tensor } from '../core/tensor.js';
import type { CaseError } from './types.js';

/** A pinned tensor owning its buffer, filled from the host (case and test inputs). */
export function upload(gpu: Gpu, shape: number[], data: Float32Array | Int32Array | Uint32Array, label = 'input'): Tensor {
  const buffer = gpu.device.createBuffer({ label, size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  gpu.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  const t = new Tensor(buffer, shape, data instanceof Float32Array ? 'f32' : data instanceof Int32Array ? 'i32' : 'u32', 0, label);
  t.pinned = true;
  return t;
}

/** `count` sample positions in [0, n) (all of them when count is undefined or >= n), always with the first and last. */
export function samplePositions(n: number, count: number | undefined, seed: number): number[] {
  if (count === undefined || count >= n) return Array.from({ length: n }, (_, i) => i);
  const r = seeded(count, seed);
  const out = [0, n - 1];
  for (let i = 0; out.length < count; i++) out.push(Math.floor(((r[i % count] + 1) / 2) * n) % n);
  return out;
}

/**
 * The worst |got - ref| over max |ref| at `positions` (the golden tests' rel_to_max), with where
 * it is; NaN or infinite errors count as Infinity, reported at the first place they occur.
 */
export function compareAt(got: ArrayLike<number>, positions: Iterable<number>, ref: (i: number) => number): CaseError {
  let scale = 0;
  let worst = 0;
  let at = 0;
  let worstRef = 0;
  let samples = 0;
  for (const i of positions) {
    const r = ref(i);
    samples++;
    scale = Math.max(scale, Math.abs(r));
    const d = Math.abs(got[i] - r);
    const e = Number.isNaN(d) ? Infinity : d;
    if (e > worst) {
      worst = e;
      at = i;
      worstRef = r;
    }
  }
  return { err: worst / (scale || 1), samples, at, got: got[at], ref: worstRef };
}

export interface RelError {
  /** Worst |got - ref| / max|ref| (max|ref| taken as 1 when the reference is all zeros). */
  rel: number;
  maxAbs: number;
  maxRef: number;
  /** Flat index of the worst error, and the two values there. */
  at: number;
  got: number;
  ref: number;
}

/** compareAt over every element of two arrays of the same length. */
export function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): RelError {
  if (got.length !== ref.length) throw new Error(`got ${got.length} values, reference has ${ref.length}`);
  let maxRef = 0;
  let maxAbs = 0;
  let at = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
    const d = Math.abs(got[i] - ref[i]);
    const err = Number.isNaN(d) ? Infinity : d;
    if (err > maxAbs) {
      maxAbs = err;
      at = i;
    }
  }
  return { rel: maxAbs / (maxRef || 1), maxAbs, maxRef, at, got: got[at], ref: ref[at] };
}

/** Reference of every output, computed once from an element function (tests' full comparisons). */
export function everyElement(n: number, at: (i: number) => number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = at(i);
  return out;
}
