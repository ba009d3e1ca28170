// rq_search: residual quantization, the nearest-codeword search of every depth
//                         (official RQBottleneck.quantize with a shared codebook, VQEmbedding.compute_distances)
//   x        [T, E]    tokens to quantize (T = B*h*w in raster order)
//   w        [K+1, E]  codebook weight; row K is the padding row and is never a candidate
//   w_norm   [K]       |w_k|^2 of the candidate rows (computed once at load)
//   codes    [T, D]    i32: c[d] = argmin_{k<K} (|r|^2 + |w_k|^2) - 2 r.w_k, lowest k on ties
//   z_q      [T, E]    sum_d w[c[d]]
//   margin   [T, D]    second-smallest minus smallest distance of each selection (0 on a tie)
//   residual [T, D, E] the residual r fed to depth d (r_0 = x, r_{d+1} = r_d - w[c[d]])
// E ({{EMBED_DIM}}) is a placeholder: the residual is a private array. The distance has the
// official form (norms added first, then -2 r.w), in f32.
// One invocation per token scans the whole codebook at each depth with its residual in
// registers: no [T, K] distance matrix, no shared memory, and the codebook reads are the same
// address across invocations (uniform loads). Invocations past T redo the last token and store
// nothing, so that control flow stays uniform.
struct Params { T: u32, K: u32, D: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> w_norm: array<f32>;
@group(0) @binding(4) var<storage, read_write> codes: array<i32>;
@group(0) @binding(5) var<storage, read_write> z_q: array<f32>;
@group(0) @binding(6) var<storage, read_write> margin: array<f32>;
@group(0) @binding(7) var<storage, read_write> residual: array<f32>;

const E: u32 = {{EMBED_DIM}}u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tok = (wid.x + wid.y * nwg.x) * 64u + lid;
  let store = tok < p.T;
  let t = min(tok, p.T - 1u);
  var r: array<f32, E>;
  var sum: array<f32, E>;
  for (var e = 0u; e < E; e++) { r[e] = x[t * E + e]; }
  for (var d = 0u; d < p.D; d++) {
    var rn = 0.0;
    for (var e = 0u; e < E; e++) { rn += r[e] * r[e]; }
    var best = 3.4e38;
    var second = 3.4e38;
    var arg = 0u;
    for (var k = 0u; k < p.K; k++) {
      var dot = 0.0;
      for (var e = 0u; e < E; e++) { dot += r[e] * w[k * E + e]; }
      let dist = (rn + w_norm[k]) - 2.0 * dot;
      if (dist < best) {
        second = best;
        best = dist;
        arg = k;
      } else if (dist < second) {
        second = dist;
      }
    }
    if (store) {
      codes[t * p.D + d] = i32(arg);
      margin[t * p.D + d] = second - best;
      for (var e = 0u; e < E; e++) { residual[(t * p.D + d) * E + e] = r[e]; }
    }
    for (var e = 0u; e < E; e++) {
      let c = w[arg * E + e];
      r[e] -= c;
      sum[e] += c;
    }
  }
  if (store) {
    for (var e = 0u; e < E; e++) { z_q[t * E + e] = sum[e]; }
  }
}
