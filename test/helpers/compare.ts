// How far a result is from its reference: the golden tests' rel_to_max, the worst |got - ref|
// divided by max|ref|, with where the worst error is. NaN-safe: a NaN (or infinite) error gives
// Infinity, reported at the first place it happens.

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

/** relErr's worst relative error alone. */
export function relToMax(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  return relErr(got, ref).rel;
}
