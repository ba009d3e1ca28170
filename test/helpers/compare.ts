// How far a result is from its reference: the golden tests' rel_to_max (one implementation, in
// src/ops/case-kit.ts, shared with the op cases of the kernel lab and autotune).
import { relErr } from '../../src/ops/case-kit.js';

export { relErr, type RelError } from '../../src/ops/case-kit.js';

/** relErr's worst relative error alone. */
export function relToMax(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  return relErr(got, ref).rel;
}
