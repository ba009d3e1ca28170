// CPU references for the transformer kernels, accumulating in float64.
import { seededGaussian } from '../../src/core/random.js';
/** N(0, scale^2) values, deterministic for a seed. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  return seededGaussian(n, seed, 0, scale);
}

export function geluTanh(v: number): number {
  return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
}

/** y[M,N] = act(x[M,K] w[N,K]^T + b) + r */
export function linearRef(x: Float32Array, w: Float32Array, M: number, N: number, K: number, b?: Float32Array, r?: Float32Array, gelu = false): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      if (b) s += b[n];
      if (gelu) s = geluTanh(s);
      if (r) s += r[m * N + n];
      y[m * N + n] = s;
    }
  }
  return y;
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

/** q [B,Lq,H*D], k/v [B,Lk,H*D] -> o [B,Lq,H*D] */
export function attentionRef(q: Float32Array, k: Float32Array, v: Float32Array, B: number, H: number, D: number, Lq: number, Lk: number, causal: boolean, scale = 1 / Math.sqrt(D)): Float64Array {
  const W = H * D;
  const o = new Float64Array(B * Lq * W);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < Lq; i++) {
        const end = causal ? Math.min(i + 1, Lk) : Lk;
        const s = new Float64Array(end);
        let mx = -Infinity;
        for (let j = 0; j < end; j++) {
          let d = 0;
          for (let e = 0; e < D; e++) d += q[(b * Lq + i) * W + h * D + e] * k[(b * Lk + j) * W + h * D + e];
          s[j] = d * scale;
          mx = Math.max(mx, s[j]);
        }
        let sum = 0;
        for (let j = 0; j < end; j++) sum += (s[j] = Math.exp(s[j] - mx));
        for (let e = 0; e < D; e++) {
          let acc = 0;
          for (let j = 0; j < end; j++) acc += s[j] * v[(b * Lk + j) * W + h * D + e];
          o[(b * Lq + i) * W + h * D + e] = acc / sum;
        }
      }
    }
  }
  return o;
}
