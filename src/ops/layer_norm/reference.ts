// layer_norm's float64 reference: torch.nn.LayerNorm(C, eps) over the last dim, two-pass
// statistics, the biased variance.
import { everyElement } from '../case-kit.js';

/** Element i of LayerNorm on x [rows, C]; each row's statistics computed once, on first use. */
export function layerNormAt(x: Float32Array, C: number, gamma: Float32Array, beta: Float32Array, eps: number): (i: number) => number {
  const stats = new Map<number, [number, number]>();
  const rowStats = (r: number): [number, number] => {
    let st = stats.get(r);
    if (st) return st;
    let sum = 0;
    for (let c = 0; c < C; c++) sum += x[r * C + c];
    const mean = sum / C;
    let sq = 0;
    for (let c = 0; c < C; c++) sq += (x[r * C + c] - mean) ** 2;
    st = [mean, 1 / Math.sqrt(sq / C + eps)];
    stats.set(r, st);
    return st;
  };
  return (i) => {
    const [mean, rstd] = rowStats(Math.floor(i / C));
    const c = i % C;
    return (x[i] - mean) * rstd * gamma[c] + beta[c];
  };
}

/** Every element of layerNormAt. */
export function layerNormRef(x: Float32Array, rows: number, C: number, gamma: Float32Array, beta: Float32Array, eps: number): Float64Array {
  return everyElement(rows * C, layerNormAt(x, C, gamma, beta, eps));
}
