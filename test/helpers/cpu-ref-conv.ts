// CPU references of the decoder's NCHW kernels without variants, accumulating in float64, written
// straight from the PyTorch definitions (no tiling), plus a seeded random source for test data
// (conv2d's and group_norm's references are in src/ops/<op>/reference.ts).

/** Deterministic uniform values in [-scale, scale), so failures reproduce. */
export { seeded as randomArray } from '../../src/core/random.js';


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
