// attention_wg: o = softmax(q k^T * scale [+ causal mask]) v, per batch item and head
//                                        (torch scaled_dot_product_attention / nn.MultiheadAttention core)
//   q, k, v, o: strided views as in attention.wgsl (element d of head h, row i, batch b of q at
//   q[q_off + b*q_bs + i*q_rs + h*HEAD_DIM + d]; the same for k, v, o; q_bs = 0 broadcasts).
//   Lq query rows, Lk key rows, H heads of HEAD_DIM ({{HEAD_DIM}}) values.
// Flag (a uniform, so one pipeline serves both): causal = 1 masks keys j > i (query i sees keys 0..i).
// The GPU-shaped variant (flash-style): a workgroup of 64 invocations takes 64 queries of one
// (b, h), each invocation one query with its running max, sum and output in registers (online
// softmax, no [Lq, Lk] score matrix). Keys and values are walked in tiles of KEY_TILE
// ({{KEY_TILE}}, a placeholder sized from the device's workgroup storage) rows, each tile
// staged once in workgroup memory by all 64 invocations and then read by every query (all
// invocations read the same word at a time: a broadcast). The arithmetic per key is that of the
// one-query-per-invocation variant (attention.wgsl). Queries past Lq load the last row, take
// part in the barriers and store nothing.
struct Params {
  B: u32, H: u32, Lq: u32, Lk: u32, scale: f32, qBlocks: u32,
  q_off: u32, q_bs: u32, q_rs: u32,
  k_off: u32, k_bs: u32, k_rs: u32,
  v_off: u32, v_bs: u32, v_rs: u32,
  o_off: u32, o_bs: u32, o_rs: u32,
  causal: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

const D: u32 = {{HEAD_DIM}}u;
const TK: u32 = {{KEY_TILE}}u;

var<workgroup> ks: array<f32, TK * D>; // ks[jj * D + d] = k row j0 + jj
var<workgroup> vs: array<f32, TK * D>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.B * p.H * p.qBlocks) { return; } // uniform across the workgroup
  let qblock = g % p.qBlocks;
  let h = (g / p.qBlocks) % p.H;
  let b = g / (p.qBlocks * p.H);
  let i = qblock * 64u + lid;
  let ic = min(i, p.Lq - 1u);
  let qb = p.q_off + b * p.q_bs + ic * p.q_rs + h * D;
  var qv: array<f32, D>;
  for (var d = 0u; d < D; d++) { qv[d] = q[qb + d] * p.scale; }
  var acc: array<f32, D>;
  for (var d = 0u; d < D; d++) { acc[d] = 0.0; }
  var mx = -3.0e38;
  var sum = 0.0;
  var end = p.Lk; // keys this query sees
  var tilesEnd = p.Lk; // keys any query of the workgroup sees (uniform)
  if (p.causal == 1u) {
    end = min(ic + 1u, p.Lk);
    tilesEnd = min(min(qblock * 64u + 64u, p.Lq), p.Lk);
  }
  let kb = p.k_off + b * p.k_bs + h * D;
  let vb = p.v_off + b * p.v_bs + h * D;
  for (var j0 = 0u; j0 < tilesEnd; j0 += TK) {
    let n = min(TK, tilesEnd - j0);
    for (var e = lid; e < n * D; e += 64u) {
      let jj = e / D;
      let d = e % D;
      ks[e] = k[kb + (j0 + jj) * p.k_rs + d];
      vs[e] = v[vb + (j0 + jj) * p.v_rs + d];
    }
    workgroupBarrier();
    for (var jj = 0u; jj < n; jj++) {
      if (j0 + jj < end) {
        var s = 0.0;
        for (var d = 0u; d < D; d++) { s += qv[d] * ks[jj * D + d]; }
        let mNew = max(mx, s);
        let corr = exp(mx - mNew);
        let e = exp(s - mNew);
        sum = sum * corr + e;
        mx = mNew;
        for (var d = 0u; d < D; d++) { acc[d] = acc[d] * corr + e * vs[jj * D + d]; }
      }
    }
    workgroupBarrier();
  }
  if (i < p.Lq) {
    let ob = p.o_off + b * p.o_bs + i * p.o_rs + h * D;
    let inv = 1.0 / sum;
    for (var d = 0u; d < D; d++) { o[ob + d] = acc[d] * inv; }
  }
}
