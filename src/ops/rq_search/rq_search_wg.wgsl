// rq_search_wg: residual quantization, the codes chosen at every depth: rq_search's contract
//               (official RQBottleneck.quantize, shared codebook: VQEmbedding.compute_distances + argmin)
//   x      [T, E]       tokens (T = B*h*w, raster order)
//   w      [K, E4] vec4 the K candidate codewords, each zero-padded to E4 = ceil(E/4) vec4s
//   w_norm [K]          |w_k|^2
//   codes  [T, D] i32   c[d] = argmin_k (|r|^2 + |w_k|^2) - 2 r.w_k over the residual
//                       r_0 = x, r_{d+1} = r_d - w[c[d]]; the lowest k on ties
//   margin [T, D]       second-smallest minus smallest distance of each selection (0 on a tie)
// E ({{EMBED_DIM}}) and WG ({{WORKGROUP}}, a power of two) are placeholders.
// The GPU-shaped variant: one workgroup per token. Its WG invocations split the codebook
// (invocation l scans k = l, l + WG, ...) with the residual in registers, each keeping its own
// best, second and argmin; a tree reduction in workgroup memory merges them (lower k wins a tie,
// the second-smallest distance of the union survives), so codes and margins are those of the
// sequential scan. Every invocation then subtracts the chosen codeword and the next depth starts.
// The distance of each codeword is computed with the same f32 operations, in the same order, as
// rq_search (the one-invocation-per-4-tokens variant for CPU drivers), so both give the same codes.
// Loop-local variables are initialised explicitly (Dawn + lavapipe were seen not to re-zero them).
struct Params { T: u32, K: u32, D: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4f>;
@group(0) @binding(3) var<storage, read> w_norm: array<f32>;
@group(0) @binding(4) var<storage, read_write> codes: array<i32>;
@group(0) @binding(5) var<storage, read_write> margin: array<f32>;

const E: u32 = {{EMBED_DIM}}u;
const E4: u32 = (E + 3u) / 4u;
const WG: u32 = {{WORKGROUP}}u;

var<workgroup> s_best: array<f32, WG>;
var<workgroup> s_second: array<f32, WG>;
var<workgroup> s_arg: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= p.T) { return; } // uniform across the workgroup
  var r: array<vec4f, E4>;
  for (var j = 0u; j < E4; j++) {
    var v = vec4f(0.0);
    for (var c = 0u; c < 4u; c++) {
      if (4u * j + c < E) { v[c] = x[t * E + 4u * j + c]; }
    }
    r[j] = v;
  }
  for (var d = 0u; d < p.D; d++) {
    var s = vec4f(0.0);
    for (var j = 0u; j < E4; j++) { s += r[j] * r[j]; }
    let rn = (s.x + s.y) + (s.z + s.w);
    var best = 3.4e38;
    var second = 3.4e38;
    var arg = 0u;
    for (var k = lid; k < p.K; k += WG) {
      var acc = vec4f(0.0);
      for (var j = 0u; j < E4; j++) { acc += r[j] * w[k * E4 + j]; }
      let dist = (rn + w_norm[k]) - 2.0 * ((acc.x + acc.y) + (acc.z + acc.w));
      if (dist < best) {
        second = best;
        best = dist;
        arg = k;
      } else if (dist < second) {
        second = dist;
      }
    }
    s_best[lid] = best;
    s_second[lid] = second;
    s_arg[lid] = arg;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
      if (lid < stride) {
        let ob = s_best[lid + stride];
        let oa = s_arg[lid + stride];
        let mb = s_best[lid];
        if (ob < mb || (ob == mb && oa < s_arg[lid])) {
          s_second[lid] = min(mb, s_second[lid + stride]);
          s_best[lid] = ob;
          s_arg[lid] = oa;
        } else {
          s_second[lid] = min(s_second[lid], ob);
        }
      }
      workgroupBarrier();
    }
    let code = s_arg[0];
    if (lid == 0u) {
      codes[t * p.D + d] = i32(code);
      margin[t * p.D + d] = s_second[0] - s_best[0];
    }
    for (var j = 0u; j < E4; j++) { r[j] -= w[code * E4 + j]; }
    workgroupBarrier(); // everyone has read slot 0 before the next depth writes it
  }
}
