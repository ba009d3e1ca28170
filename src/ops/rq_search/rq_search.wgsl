// rq_search: residual quantization, the codes chosen at every depth
//            (official RQBottleneck.quantize, shared codebook: VQEmbedding.compute_distances + argmin)
//   x      [T, E]       tokens (T = B*h*w, raster order)
//   w      [K, E4] vec4 the K candidate codewords (the codebook weight without its padding row),
//                       each zero-padded to E4 = ceil(E/4) vec4s; built once at load
//   w_norm [K]          |w_k|^2, built once at load
//   codes  [T, D] i32   c[d] = argmin_k (|r|^2 + |w_k|^2) - 2 r.w_k over the residual
//                       r_0 = x, r_{d+1} = r_d - w[c[d]]; the lowest k on ties
//   margin [T, D]       second-smallest minus smallest distance of each selection (0 on a tie)
// z_q = sum_d w[c[d]] is rq_embed's job (the same f32 sum in depth order).
// E ({{EMBED_DIM}}) is a placeholder: the residuals are private arrays. Distances in f32, in the
// official form (norms first, then -2 r.w).
// Each invocation quantizes TB tokens and scans the whole codebook at every depth with their
// residuals in registers: no [T, K] distance matrix, no shared memory, and each codebook vec4
// (the same address in all invocations) feeds TB tokens. On lavapipe TB = 4 is much faster than
// one token per invocation and than invocations that split the codebook; TB = 8 is faster again
// but its compilation takes twice as long and it needs twice the registers (measurements:
// bench/README.md). Invocations past T redo the last token and store nothing. Loop-local
// variables are initialised explicitly: Dawn + lavapipe were seen not to re-zero a `var a: T;`
// declared in a loop body on each iteration.
struct Params { T: u32, K: u32, D: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4f>;
@group(0) @binding(3) var<storage, read> w_norm: array<f32>;
@group(0) @binding(4) var<storage, read_write> codes: array<i32>;
@group(0) @binding(5) var<storage, read_write> margin: array<f32>;

const E: u32 = {{EMBED_DIM}}u;
const E4: u32 = (E + 3u) / 4u;
const TB: u32 = 4u;

// Components e..e+3 of a row of E floats starting at `base` (zeros past E).
fn load_x(base: u32, e: u32) -> vec4f {
  var v = vec4f(0.0);
  v.x = x[base + e];
  if (e + 1u < E) { v.y = x[base + e + 1u]; }
  if (e + 2u < E) { v.z = x[base + e + 2u]; }
  if (e + 3u < E) { v.w = x[base + e + 3u]; }
  return v;
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t0 = ((wid.x + wid.y * nwg.x) * 8u + lid) * TB;
  var r: array<vec4f, TB * E4>; // r[i * E4 + j]: components 4j..4j+3 of token t0+i's residual
  for (var i = 0u; i < TB; i++) {
    let t = min(t0 + i, p.T - 1u);
    for (var j = 0u; j < E4; j++) { r[i * E4 + j] = load_x(t * E, 4u * j); }
  }
  for (var d = 0u; d < p.D; d++) {
    var rn: array<f32, TB>;
    var best: array<f32, TB>;
    var second: array<f32, TB>;
    var arg: array<u32, TB>;
    for (var i = 0u; i < TB; i++) {
      var s = vec4f(0.0);
      for (var j = 0u; j < E4; j++) { s += r[i * E4 + j] * r[i * E4 + j]; }
      rn[i] = (s.x + s.y) + (s.z + s.w);
      best[i] = 3.4e38;
      second[i] = 3.4e38;
      arg[i] = 0u;
    }
    for (var k = 0u; k < p.K; k++) {
      var acc: array<vec4f, TB>;
      for (var i = 0u; i < TB; i++) { acc[i] = vec4f(0.0); }
      for (var j = 0u; j < E4; j++) {
        let c = w[k * E4 + j];
        for (var i = 0u; i < TB; i++) { acc[i] += r[i * E4 + j] * c; }
      }
      let wn = w_norm[k];
      for (var i = 0u; i < TB; i++) {
        let dist = (rn[i] + wn) - 2.0 * ((acc[i].x + acc[i].y) + (acc[i].z + acc[i].w));
        if (dist < best[i]) {
          second[i] = best[i];
          best[i] = dist;
          arg[i] = k;
        } else if (dist < second[i]) {
          second[i] = dist;
        }
      }
    }
    for (var i = 0u; i < TB; i++) {
      if (t0 + i < p.T) {
        codes[(t0 + i) * p.D + d] = i32(arg[i]);
        margin[(t0 + i) * p.D + d] = second[i] - best[i];
      }
      for (var j = 0u; j < E4; j++) { r[i * E4 + j] -= w[arg[i] * E4 + j]; }
    }
  }
}
