// linear's float64 reference, written straight from torch.nn.Linear [+ GELU tanh] [+ residual].
import { everyElement } from '../case-kit.js';

/** F.gelu(v, approximate='tanh'). */
export function geluTanh(v: number): number {
  return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
}

/** Element i of y[M,N] = act(x[M,K] w[N,K]^T + b) + r. */
export function linearAt(x: Float32Array, w: Float32Array, N: number, K: number, b?: Float32Array, r?: Float32Array, gelu = false): (i: number) => number {
  return (i) => {
    const m = Math.floor(i / N);
    const n = i % N;
    let s = 0;
    for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
    if (b) s += b[n];
    if (gelu) s = geluTanh(s);
    return r ? s + r[i] : s;
  };
}

/** y[M,N] = act(x[M,K] w[N,K]^T + b) + r, every element. */
export function linearRef(x: Float32Array, w: Float32Array, M: number, N: number, K: number, b?: Float32Array, r?: Float32Array, gelu = false): Float64Array {
  return everyElement(M * N, linearAt(x, w, N, K, b, r, gelu));
}
