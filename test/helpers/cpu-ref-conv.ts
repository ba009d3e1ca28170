// CPU references of the decoder's NCHW kernels, accumulating in float64, written straight from
// the PyTorch definitions (no tiling), plus a seeded random source for test data and the list of
// tensors the official decoder modules create (for synthetic weights of any size).

/** Deterministic uniform values in [-scale, scale), so failures reproduce. */
export { seeded as randomArray } from '../../src/core/random.js';


/** torch.nn.Conv2d(k x k, stride 1, padding k/2) + bias [+ residual].  x [B,Cin,H,W], w [Cout,Cin,k,k] -> [B,Cout,H,W] */
export function conv2dRef(x: Float32Array, B: number, Cin: number, H: number, W: number, w: Float32Array, Cout: number, K: number, bias: Float32Array, residual?: Float32Array): Float64Array {
  const pad = Math.floor(K / 2);
  const y = new Float64Array(B * Cout * H * W);
  for (let b = 0; b < B; b++)
    for (let co = 0; co < Cout; co++)
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++) {
          let acc = bias[co];
          for (let ci = 0; ci < Cin; ci++)
            for (let ky = 0; ky < K; ky++) {
              const iy = i + ky - pad;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < K; kx++) {
                const ix = j + kx - pad;
                if (ix < 0 || ix >= W) continue;
                acc += x[((b * Cin + ci) * H + iy) * W + ix] * w[((co * Cin + ci) * K + ky) * K + kx];
              }
            }
          const o = ((b * Cout + co) * H + i) * W + j;
          y[o] = acc + (residual ? residual[o] : 0);
        }
  return y;
}

/** torch.nn.GroupNorm(G, C, eps, affine) [+ F.silu].  x [B,C,H,W] -> [B,C,H,W] */
export function groupNormRef(x: Float32Array, B: number, C: number, HW: number, G: number, gamma: Float32Array, beta: Float32Array, eps: number, silu: boolean): Float64Array {
  const y = new Float64Array(x.length);
  const S = (C / G) * HW;
  for (let seg = 0; seg < B * G; seg++) {
    const base = seg * S;
    let sum = 0;
    for (let i = 0; i < S; i++) sum += x[base + i];
    const mean = sum / S;
    let sq = 0;
    for (let i = 0; i < S; i++) sq += (x[base + i] - mean) ** 2;
    const rstd = 1 / Math.sqrt(sq / S + eps);
    for (let i = 0; i < S; i++) {
      const c = ((seg % G) * S + i) / HW | 0;
      let v = (x[base + i] - mean) * rstd * gamma[c] + beta[c];
      if (silu) v = v / (1 + Math.exp(-v));
      y[base + i] = v;
    }
  }
  return y;
}

/** F.interpolate(scale_factor=2, mode='nearest').  x [B,C,H,W] -> [B,C,2H,2W] */
export function upsampleNearest2xRef(x: Float32Array, planes: number, H: number, W: number): Float64Array {
  const y = new Float64Array(planes * 4 * H * W);
  for (let pl = 0; pl < planes; pl++)
    for (let i = 0; i < 2 * H; i++)
      for (let j = 0; j < 2 * W; j++) y[(pl * 2 * H + i) * 2 * W + j] = x[(pl * H + (i >> 1)) * W + (j >> 1)];
  return y;
}

/** Source index and weight of the second tap along one axis (align_corners=False, clamped at 0). */
function linearTaps(dst: number, inSize: number, outSize: number): [number, number, number] {
  const src = Math.max(((dst + 0.5) * inSize) / outSize - 0.5, 0);
  const i0 = Math.min(Math.floor(src), inSize - 1);
  return [i0, Math.min(i0 + 1, inSize - 1), src - i0];
}

/** F.interpolate(size=(OH,OW), mode='bilinear', align_corners=False), no antialias.  [B,C,H,W] -> [B,C,OH,OW] */
export function resizeBilinearRef(x: Float32Array, planes: number, H: number, W: number, OH: number, OW: number): Float64Array {
  const y = new Float64Array(planes * OH * OW);
  for (let pl = 0; pl < planes; pl++)
    for (let i = 0; i < OH; i++) {
      const [y0, y1, ly] = linearTaps(i, H, OH);
      for (let j = 0; j < OW; j++) {
        const [x0, x1, lx] = linearTaps(j, W, OW);
        const at = (r: number, c: number) => x[(pl * H + r) * W + c];
        y[(pl * OH + i) * OW + j] = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
      }
    }
  return y;
}

/** x.reshape(B,h,w,C).permute(0,3,1,2).  [B,L,C] -> [B,C,L] */
export function tokensToNchwRef(x: Float32Array, B: number, L: number, C: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let b = 0; b < B; b++)
    for (let l = 0; l < L; l++)
      for (let c = 0; c < C; c++) y[(b * C + c) * L + l] = x[(b * L + l) * C + c];
  return y;
}

/** AttnBlock's attention: o[b,:,i] = sum_j softmax_j(q[b,:,i].k[b,:,j] / sqrt(C)) v[b,:,j].  q, k, v [B,C,N] -> [B,C,N] */
export function spatialAttentionRef(q: Float32Array, k: Float32Array, v: Float32Array, B: number, C: number, N: number): Float64Array {
  const o = new Float64Array(B * C * N);
  const s = new Float64Array(N);
  for (let b = 0; b < B; b++) {
    const at = (t: Float32Array, c: number, n: number) => t[(b * C + c) * N + n];
    for (let i = 0; i < N; i++) {
      let mx = -Infinity;
      for (let j = 0; j < N; j++) {
        let d = 0;
        for (let c = 0; c < C; c++) d += at(q, c, i) * at(k, c, j);
        s[j] = d / Math.sqrt(C);
        mx = Math.max(mx, s[j]);
      }
      let sum = 0;
      for (let j = 0; j < N; j++) sum += (s[j] = Math.exp(s[j] - mx));
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let j = 0; j < N; j++) acc += at(v, c, j) * s[j];
        o[(b * C + c) * N + i] = acc / sum;
      }
    }
  }
  return o;
}
