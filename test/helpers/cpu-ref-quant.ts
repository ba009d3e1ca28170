// The float64 reference of rq_embed (the quantizer's codes back to vectors).

/** sum_d w[clamp(c[d], 0, rows-1)] in float64.  codes [T, D], w [rows, E] -> [T, E] */
export function rqEmbedReference(codes: Int32Array, T: number, D: number, w: Float32Array, rows: number, E: number): Float64Array {
  const out = new Float64Array(T * E);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < D; d++) {
      const c = Math.min(Math.max(codes[t * D + d], 0), rows - 1);
      for (let e = 0; e < E; e++) out[t * E + e] += w[c * E + e];
    }
  }
  return out;
}
