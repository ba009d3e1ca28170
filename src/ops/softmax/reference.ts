// softmax's float64 reference: F.softmax(scale * s, dim=-1) per row of N scores, shifted by the
// row's max.
import { everyElement } from '../case-kit.js';

/** Element i of the row softmax of s [rows, N]; each row's max and sum computed once, on first use. */
export function softmaxAt(s: Float32Array, N: number, scale: number): (i: number) => number {
  const stats = new Map<number, [number, number]>();
  const rowStats = (r: number): [number, number] => {
    let st = stats.get(r);
    if (st) return st;
    let mx = -Infinity;
    for (let j = 0; j < N; j++) mx = Math.max(mx, s[r * N + j]);
    let sum = 0;
    for (let j = 0; j < N; j++) sum += Math.exp(scale * (s[r * N + j] - mx));
    st = [mx, sum];
    stats.set(r, st);
    return st;
  };
  return (i) => {
    const [mx, sum] = rowStats(Math.floor(i / N));
    return Math.exp(scale * (s[i] - mx)) / sum;
  };
}

/** Every element of softmaxAt. */
export function softmaxRef(s: Float32Array, rows: number, N: number, scale: number): Float64Array {
  return everyElement(rows * N, softmaxAt(s, N, scale));
}
