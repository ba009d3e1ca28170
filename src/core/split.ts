// Dispatches that fit the binding limit. An activation can be larger than the adapter's
// maxStorageBufferBindingSize (128 MiB on lavapipe: at 384 px the MLP's hidden state is 12.5 MB
// per image, the decoder's largest activation 75 MB per image), so every op that can meet one
// binds it in ranges, one dispatch per range:
// - splitBatch: ranges of batch items; each binding starts at the aligned byte offset at or below
//   its range and the kernel takes the remaining element offset as a uniform.
// - splitRows: ranges of rows of row-major tensors, in multiples of the fewest rows whose bytes
//   are a multiple of the offset alignment, so that every range starts aligned and the kernel
//   needs no offset: it sees a smaller tensor.
import type { Program } from './program.js';
import { shapeStr, type Tensor } from './tensor.js';

export interface SplitOptions {
  /** Largest binding of an activation in bytes; default the adapter's maxStorageBufferBindingSize (tests lower it to force splits). */
  maxBindingBytes?: number;
}

/** A batch range of a tensor as a binding: `t` starts at an aligned byte offset, `off` elements before the range. */
export interface Slice {
  t: Tensor;
  off: number;
}

function bindingLimit(prog: Program, opts: SplitOptions): number {
  return opts.maxBindingBytes ?? prog.gpu.limits.maxStorageBufferBindingSize;
}

/** Items [b0, b0 + n) of `itemElems` elements each, bound from the aligned offset at or below them. */
export function slice(t: Tensor, itemElems: number, b0: number, n: number, align: number): Slice {
  const start = t.offset + b0 * itemElems * 4;
  const at = Math.floor(start / align) * align;
  const off = (start - at) / 4;
  return { t: t.at([off + n * itemElems], at), off };
}

/**
 * Records `record(n, slices)` once per batch range [b0, b0 + n), with n as large as the binding
 * limit allows. `tensors` all have the batch as their leading dimension (numel / B per item).
 */
export function splitBatch(prog: Program, op: string, B: number, tensors: Tensor[], opts: SplitOptions, record: (n: number, slices: Slice[], b0: number) => void): void {
  const limit = bindingLimit(prog, opts);
  const align = prog.gpu.limits.minStorageBufferOffsetAlignment;
  let per = B;
  for (const t of tensors) {
    const itemBytes = (t.numel / B) * 4;
    const fit = Math.floor((limit - (align - 4)) / itemBytes); // the slice may start up to align - 4 bytes early
    if (fit < 1) throw new Error(`${op}: one batch item of '${t.label}' ${shapeStr(t.shape)} is ${itemBytes} bytes; with alignment slack it exceeds the binding limit of ${limit} bytes`);
    per = Math.min(per, fit);
  }
  for (let b0 = 0; b0 < B; b0 += per) {
    const n = Math.min(per, B - b0);
    record(n, tensors.map((t) => slice(t, t.numel / B, b0, n, align)), b0);
  }
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * Records `record(rows, views)` once per range of rows, each view a [rows, width] tensor of the
 * same memory. `tensors` are row-major with `M` rows each (their own widths); one range when
 * everything fits, else ranges of a multiple of the fewest rows whose byte size is a multiple of
 * the offset alignment in every tensor.
 */
export function splitRows(prog: Program, op: string, M: number, tensors: Tensor[], opts: SplitOptions, record: (rows: number, views: Tensor[]) => void): void {
  const limit = bindingLimit(prog, opts);
  if (tensors.every((t) => t.byteLength <= limit)) {
    record(M, tensors);
    return;
  }
  const align = prog.gpu.limits.minStorageBufferOffsetAlignment;
  let step = 1; // rows
  for (const t of tensors) {
    const rowBytes = t.byteLength / M;
    const need = align / gcd(align, rowBytes);
    step = (step * need) / gcd(step, need);
    if (t.offset % align !== 0) throw new Error(`${op}: '${t.label}' starts at byte ${t.offset}, not a multiple of ${align}: it cannot be bound in ranges`);
  }
  let per = M;
  for (const t of tensors) {
    const rowBytes = t.byteLength / M;
    per = Math.min(per, Math.floor(limit / (step * rowBytes)) * step);
    if (per < 1) throw new Error(`${op}: ${step} row(s) of '${t.label}' ${shapeStr(t.shape)} (${step * rowBytes} bytes, the fewest that keep ranges aligned) exceed the binding limit of ${limit} bytes`);
  }
  for (let m0 = 0; m0 < M; m0 += per) {
    const n = Math.min(per, M - m0);
    record(
      n,
      tensors.map((t) => {
        const width = t.numel / M;
        return t.at([n, width], t.offset + m0 * width * 4);
      }),
    );
  }
}
