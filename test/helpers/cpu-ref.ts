// CPU references for the transformer kernels without variants, accumulating in float64 (the op
// modules' references are in src/ops/<op>/reference.ts).
import { seededGaussian } from '../../src/core/random.js';
/** N(0, scale^2) values, deterministic for a seed. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  return seededGaussian(n, seed, 0, scale);
}

export function layerNormRef(x: Float32Array, g: Float32Array, b: Float32Array, rows: number, C: number, eps: number): Float64Array {
  const y = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let c = 0; c < C; c++) mean += x[r * C + c];
    mean /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[r * C + c] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) y[r * C + c] = (x[r * C + c] - mean) * inv * g[c] + b[c];
  }
  return y;
}
