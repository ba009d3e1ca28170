// attention's float64 reference: softmax(q k^T * scale) v per batch item and head, causal or not.

/**
 * Element idx of o [B,Lq,H*D] from q [B,Lq,H*D], k/v [B,Lk,H*D]; each (item, query, head) row is
 * computed once, on first use (a row costs Lk * D).
 */
export function attentionAt(q: Float32Array, k: Float32Array, v: Float32Array, H: number, D: number, Lq: number, Lk: number, causal: boolean, scale = 1 / Math.sqrt(D)): (idx: number) => number {
  const W = H * D;
  const rows = new Map<number, Float64Array>();
  const row = (b: number, i: number, h: number): Float64Array => {
    const key = (b * Lq + i) * H + h;
    let o = rows.get(key);
    if (o) return o;
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
    for (let j = 0; j < end; j++) sum += s[j] = Math.exp(s[j] - mx);
    o = new Float64Array(D);
    for (let j = 0; j < end; j++) for (let e = 0; e < D; e++) o[e] += (s[j] / sum) * v[(b * Lk + j) * W + h * D + e];
    rows.set(key, o);
    return o;
  };
  return (idx) => {
    const bi = Math.floor(idx / W);
    return row(Math.floor(bi / Lq), bi % Lq, Math.floor((idx % W) / D))[idx % D];
  };
}

/** q [B,Lq,H*D], k/v [B,Lk,H*D] -> o [B,Lq,H*D], every element. */
export function attentionRef(q: Float32Array, k: Float32Array, v: Float32Array, B: number, H: number, D: number, Lq: number, Lk: number, causal: boolean, scale = 1 / Math.sqrt(D)): Float64Array {
  const at = attentionAt(q, k, v, H, D, Lq, Lk, causal, scale);
  const o = new Float64Array(B * Lq * H * D);
  for (let i = 0; i < o.length; i++) o[i] = at(i);
  return o;
}
