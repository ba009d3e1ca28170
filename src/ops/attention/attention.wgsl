// attention: o = softmax(q k^T * scale [+ causal mask]) v, per batch item and head
//                                        (torch scaled_dot_product_attention / nn.MultiheadAttention core)
//   q, k, v, o are strided views so that packed qkv projections are read in place:
//     element d of head h, row i, batch b of q is q[q_off + b*q_bs + i*q_rs + h*HEAD_DIM + d]
//     (the same for k, v, o with their own offsets and strides; q_bs = 0 broadcasts one query set).
//   Lq query rows, Lk key rows, H heads of HEAD_DIM ({{HEAD_DIM}}, a placeholder: private arrays
//   need a creation-time size).
// Flag (a uniform, so one pipeline serves both): causal = 1 masks keys j > i (query i sees keys 0..i).
// One invocation per (b, h, i) with an online (flash-style) softmax: no [Lq, Lk] score matrix.
struct Params {
  B: u32, H: u32, Lq: u32, Lk: u32, scale: f32,
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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (idx >= p.B * p.H * p.Lq) { return; }
  let i = idx % p.Lq;
  let h = (idx / p.Lq) % p.H;
  let b = idx / (p.Lq * p.H);
  let qb = p.q_off + b * p.q_bs + i * p.q_rs + h * D;
  var qv: array<f32, D>;
  for (var d = 0u; d < D; d++) { qv[d] = q[qb + d] * p.scale; }
  var acc: array<f32, D>;
  var mx = -3.0e38;
  var sum = 0.0;
  var end = p.Lk;
  if (p.causal == 1u) { end = min(i + 1u, p.Lk); }
  for (var j = 0u; j < end; j++) {
    let kb = p.k_off + b * p.k_bs + j * p.k_rs + h * D;
    var s = 0.0;
    for (var d = 0u; d < D; d++) { s += qv[d] * k[kb + d]; }
    let mNew = max(mx, s);
    let corr = exp(mx - mNew);
    let e = exp(s - mNew);
    sum = sum * corr + e;
    mx = mNew;
    let vb = p.v_off + b * p.v_bs + j * p.v_rs + h * D;
    for (var d = 0u; d < D; d++) { acc[d] = acc[d] * corr + e * v[vb + d]; }
  }
  let ob = p.o_off + b * p.o_bs + i * p.o_rs + h * D;
  let inv = 1.0 / sum;
  for (var d = 0u; d < D; d++) { o[ob + d] = acc[d] * inv; }
}
