// attention_sg: o = softmax(q k^T * scale [+ causal mask]) v, per batch item and head
//                                        (torch scaled_dot_product_attention / nn.MultiheadAttention core)
//   q, k, v, o are strided views so that packed qkv projections are read in place:
//     element d of head h, row i, batch b of q is q[q_off + b*q_bs + i*q_rs + h*HEAD_DIM + d]
//     (the same for k, v, o with their own offsets and strides; q_bs = 0 broadcasts one query set).
//     Read as vec4: HEAD_DIM and every offset and row/batch stride of q, k, v are multiples of 4.
//   Lq query rows, Lk key rows, H heads of HEAD_DIM ({{HEAD_DIM}}, a placeholder: private arrays
//   need a creation-time size).
// Flag (a uniform, so one pipeline serves both): causal = 1 masks keys j > i (query i sees keys 0..i); QUERIES ({{QUERIES}}, a
// placeholder: array sizes) queries per invocation: 1 (variant sg) or 2 (sg2).
// For CPU drivers (lavapipe), where every storage load inside a loop is done lane by lane: each
// invocation owns QUERIES queries (lid + WORKGROUP n), a workgroup WORKGROUP ({{WORKGROUP}}, a
// placeholder) x QUERIES consecutive queries of one (b, h), so all lanes read the same key and
// value rows. Each row is loaded once per group of 8 lanes (one vec4 in 8 per lane) and the
// lanes read each other's parts with subgroupShuffle (a register permute); each part shuffled
// feeds QUERIES multiply-adds. Keys go in blocks of 8: the 8 scores first, then one rescale of
// the running sum and accumulator per block (online, flash-style softmax; no [Lq, Lk] score
// matrix). Needs subgroups whose size is a multiple of 8. Every invocation stays active through
// the loop (queries past Lq redo the last one and store nothing). No shared memory.
enable subgroups;

struct Params {
  B: u32, H: u32, Lq: u32, Lk: u32, scale: f32, qGroups: u32,
  q_off: u32, q_bs: u32, q_rs: u32,
  k_off: u32, k_bs: u32, k_rs: u32,
  v_off: u32, v_bs: u32, v_rs: u32,
  o_off: u32, o_bs: u32, o_rs: u32,
  causal: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

const D: u32 = {{HEAD_DIM}}u;
const D4: u32 = D / 4u;
/** vec4s of one row held per lane: lane l of a group of 8 holds vec4s l, l + 8, ... */
const SLOTS: u32 = (D4 + 7u) / 8u;
/** Keys per block. */
const KB: u32 = 8u;
/** Queries per invocation. */
const QN: u32 = {{QUERIES}}u;

@compute @workgroup_size({{WORKGROUP}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.B * p.H * p.qGroups) { return; } // uniform across the workgroup
  let i0 = (g % p.qGroups) * QN * {{WORKGROUP}}u;
  let h = (g / p.qGroups) % p.H;
  let b = g / (p.qGroups * p.H);
  let lane = sid & 7u;
  let base = sid & ~7u;
  var iq: array<u32, QN>; // this invocation's queries: i0 + lid + WORKGROUP n
  var qv: array<array<vec4f, D4>, QN>;
  var acc: array<array<vec4f, D4>, QN>;
  var mx: array<f32, QN>;
  var sum: array<f32, QN>;
  for (var n = 0u; n < QN; n++) {
    iq[n] = min(i0 + {{WORKGROUP}}u * n + lid, p.Lq - 1u);
    let qb = (p.q_off + b * p.q_bs + iq[n] * p.q_rs + h * D) / 4u;
    for (var d = 0u; d < D4; d++) { qv[n][d] = q[qb + d] * p.scale; }
    mx[n] = -3.0e38;
    sum[n] = 0.0;
  }
  var end = p.Lk;
  if (p.causal == 1u) { end = min(min(i0 + QN * {{WORKGROUP}}u, p.Lq), p.Lk); } // the workgroup's last query sees keys up to itself
  let kb0 = p.k_off + b * p.k_bs + h * D;
  let vb0 = p.v_off + b * p.v_bs + h * D;
  for (var j0 = 0u; j0 < end; j0 += KB) {
    var s: array<array<f32, KB>, QN>;
    var blockMax = mx;
    for (var t = 0u; t < KB; t++) {
      let j = min(j0 + t, end - 1u);
      let kr = (kb0 + j * p.k_rs) / 4u;
      var part: array<vec4f, SLOTS>;
      for (var u = 0u; u < SLOTS; u++) { part[u] = k[kr + min(lane + 8u * u, D4 - 1u)]; }
      var dot4 = array<vec4f, QN>();
      for (var d = 0u; d < D4; d++) {
        let kv = subgroupShuffle(part[d / 8u], base + d % 8u);
        for (var n = 0u; n < QN; n++) { dot4[n] = fma(qv[n][d], kv, dot4[n]); }
      }
      for (var n = 0u; n < QN; n++) {
        var sc = (dot4[n].x + dot4[n].y) + (dot4[n].z + dot4[n].w);
        if (j0 + t >= end || (p.causal == 1u && j0 + t > iq[n])) { sc = -3.0e38; }
        s[n][t] = sc;
        blockMax[n] = max(blockMax[n], sc);
      }
    }
    for (var n = 0u; n < QN; n++) {
      let corr = exp(mx[n] - blockMax[n]);
      mx[n] = blockMax[n];
      sum[n] *= corr;
      for (var d = 0u; d < D4; d++) { acc[n][d] *= corr; }
    }
    for (var t = 0u; t < KB; t++) {
      var e: array<f32, QN>;
      for (var n = 0u; n < QN; n++) {
        e[n] = select(exp(s[n][t] - mx[n]), 0.0, s[n][t] <= -3.0e38);
        sum[n] += e[n];
      }
      let j = min(j0 + t, end - 1u);
      let vr = (vb0 + j * p.v_rs) / 4u;
      var part: array<vec4f, SLOTS>;
      for (var u = 0u; u < SLOTS; u++) { part[u] = v[vr + min(lane + 8u * u, D4 - 1u)]; }
      for (var d = 0u; d < D4; d++) {
        let vv = subgroupShuffle(part[d / 8u], base + d % 8u);
        for (var n = 0u; n < QN; n++) { acc[n][d] = fma(vec4f(e[n]), vv, acc[n][d]); }
      }
    }
  }
  for (var n = 0u; n < QN; n++) {
    if (i0 + {{WORKGROUP}}u * n + lid >= p.Lq) { break; }
    let ob = p.o_off + b * p.o_bs + iq[n] * p.o_rs + h * D;
    let inv = 1.0 / sum[n];
    for (var d = 0u; d < D4; d++) {
      for (var c = 0u; c < 4u; c++) { o[ob + 4u * d + c] = acc[n][d][c] * inv; }
    }
  }
}
