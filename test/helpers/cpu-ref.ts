// CPU references for the transformer kernels without variants, accumulating in float64 (the op
// modules' references are in src/ops/<op>/reference.ts).
import { seededGaussian } from '../../src/core/random.js';
/** N(0, scale^2) values, deterministic for a seed. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  return seededGaussian(n, seed, 0, scale);
}
