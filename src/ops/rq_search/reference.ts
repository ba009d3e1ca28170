// rq_search's float64 reference: residual quantization with exact squared distances.

export interface RqReference {
  codes: Int32Array; // [T, D]
  zq: Float64Array; // [T, E]
  margin: Float64Array; // [T, D]
  /** [T, D] |r|^2 + |w_best|^2: the size of the terms of the official distance form. */
  scale: Float64Array;
  /** Selections where the followed code was not the float64 argmin (only with `follow`). */
  nearTies: { t: number; d: number; chosen: number; best: number; excess: number; tolerance: number }[];
}

/**
 * Residual quantization in float64 with exact squared distances: w [K+1, E] (row K = padding,
 * never a candidate), lowest index on ties. With `follow` (codes of the engine), a selection
 * that differs from the float64 argmin is accepted, recorded in nearTies and followed, when its
 * distance exceeds the best by at most `relTol * (|r|^2 + |w_best|^2)` (float32 rounding of the
 * official distance form); a larger difference is recorded with excess > tolerance.
 */
export function rqReference(x: Float32Array, T: number, E: number, w: Float32Array, K: number, D: number, follow?: Int32Array, relTol = 1e-5): RqReference {
  const codes = new Int32Array(T * D);
  const zq = new Float64Array(T * E);
  const margin = new Float64Array(T * D);
  const scale = new Float64Array(T * D);
  const nearTies: RqReference['nearTies'] = [];
  const dist = new Float64Array(K);
  const r = new Float64Array(E);
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < E; e++) r[e] = x[t * E + e];
    for (let d = 0; d < D; d++) {
      let best = 0;
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let e = 0; e < E; e++) {
          const diff = r[e] - w[k * E + e];
          s += diff * diff;
        }
        dist[k] = s;
        if (s < dist[best]) best = k;
      }
      let second = Infinity;
      for (let k = 0; k < K; k++) if (k !== best && dist[k] < second) second = dist[k];
      margin[t * D + d] = second - dist[best];
      for (let e = 0; e < E; e++) scale[t * D + d] += r[e] * r[e] + w[best * E + e] ** 2;
      let chosen = best;
      if (follow && follow[t * D + d] !== best) {
        chosen = follow[t * D + d];
        const excess = chosen >= 0 && chosen < K ? dist[chosen] - dist[best] : Infinity;
        const tolerance = relTol * scale[t * D + d];
        nearTies.push({ t, d, chosen, best, excess, tolerance });
        if (!(excess <= tolerance)) chosen = best;
      }
      codes[t * D + d] = chosen;
      for (let e = 0; e < E; e++) {
        r[e] -= w[chosen * E + e];
        zq[t * E + e] += w[chosen * E + e];
      }
    }
  }
  return { codes, zq, margin, scale, nearTies };
}
