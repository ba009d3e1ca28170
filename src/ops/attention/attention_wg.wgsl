// attention_wg: o = softmax(q k^T * scale [+ causal mask]) v, per batch item and head
//                                        (torch scaled_dot_product_attention / nn.MultiheadAttention core)
//   q, k, v, o: strided views as in attention.wgsl (element d of head h, row i, batch b of q at
//   q[q_off + b*q_bs + i*q_rs + h*HEAD_DIM + d]; the same for k, v, o; q_bs = 0 broadcasts).
//   Lq query rows, Lk key rows, H heads of HEAD_DIM ({{HEAD_DIM}}) values: any up to 119 (the
//   workgroup memory below must fit in the 16 KiB every device has; spec.ts refuses larger ones).
// Flag (a uniform, so one pipeline serves both): causal = 1 masks keys j > i (query i sees keys 0..i).
// The GPU-shaped variant (flash-style, variant wg): a workgroup takes QUERIES ({{QUERIES}})
// consecutive queries of one (b, h), LANES ({{LANES}}) invocations per query, and walks the keys
// in tiles of KEY_TILE ({{KEY_TILE}}, a multiple of LANES sized from the device's workgroup
// storage, at most 64) rows staged in workgroup memory with the query block (scaled). Per tile:
//   scores: lane l of a query takes keys l, l + LANES, ... (KEY_TILE / LANES of them), each a
//     whole q.k dot product read from workgroup memory (no partial sums to combine);
//   online softmax: the query's LANES tile maxima meet in workgroup memory, every lane rescales
//     with the same new max; the exponentials go to workgroup memory, each lane keeps its part
//     of the running sum (added up once, at the end);
//   p v: lane l owns channels l, l + LANES, ... (ceil(HEAD_DIM / LANES) of them) of the output.
// So no invocation holds a D-long array: its private arrays are the KEY_TILE / LANES scores
// (<= 8) and ceil(HEAD_DIM / LANES) accumulators (9 at HEAD_DIM 72). No [Lq, Lk] score matrix.
// Staged rows are HEAD_DIM | 1 apart: an odd stride puts the rows the lanes of a query read at
// once in distinct banks. Queries past Lq redo the last one, take part in the barriers and store
// nothing. No subgroups: any adapter runs it. Workgroup memory: spec.ts wgStorageBytes, e.g. at
// HEAD_DIM 72: 16 x 73 + 2 x 40 x 73 + 16 x 41 + 128 floats = 30.4 KiB (KEY_TILE 40, 32 KiB
// devices such as lavapipe), 16 x 73 + 2 x 16 x 73 + 16 x 17 + 128 = 15.25 KiB (KEY_TILE 16,
// 16 KiB devices); KEY_TILE 64 from 45.6 KiB up.
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
const QN: u32 = {{QUERIES}}u;
const LN: u32 = {{LANES}}u;
const WG: u32 = QN * LN;
/** Row stride of the staged q, k and v rows (odd). */
const DS: u32 = D | 1u;
/** Keys per lane per tile. */
const KPL: u32 = TK / LN;
/** Output channels per lane. */
const CH: u32 = (D + LN - 1u) / LN;
/** Row stride of the probabilities (TK + 1: odd). */
const PS: u32 = TK + 1u;

var<workgroup> qs: array<f32, QN * DS>; // qs[qi * DS + d] = q row i0 + qi, times scale
var<workgroup> ks: array<f32, TK * DS>; // ks[jj * DS + d] = k row j0 + jj
var<workgroup> vs: array<f32, TK * DS>;
var<workgroup> ps: array<f32, QN * PS>; // ps[qi * PS + jj]: exp(score - running max), 0 where masked
var<workgroup> red: array<f32, WG>; // one value per invocation: tile maxima, then the sums

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.B * p.H * p.qBlocks) { return; } // uniform across the workgroup
  let qblock = g % p.qBlocks;
  let h = (g / p.qBlocks) % p.H;
  let b = g / (p.qBlocks * p.H);
  let i0 = qblock * QN;
  let qi = lid / LN;
  let l = lid % LN;
  let i = min(i0 + qi, p.Lq - 1u);
  for (var e = lid; e < QN * D; e += WG) {
    let r = min(i0 + e / D, p.Lq - 1u);
    qs[(e / D) * DS + e % D] = q[p.q_off + b * p.q_bs + r * p.q_rs + h * D + e % D] * p.scale;
  }
  var acc: array<f32, CH>; // zero-initialised
  var s: array<f32, KPL>;
  var mx = -3.0e38;
  var sum = 0.0; // this lane's share of the query's running sum
  var end = p.Lk; // keys this query sees
  var tilesEnd = p.Lk; // keys any query of the workgroup sees (uniform)
  if (p.causal == 1u) {
    end = min(i + 1u, p.Lk);
    tilesEnd = min(min(i0 + QN, p.Lq), p.Lk);
  }
  let kb = p.k_off + b * p.k_bs + h * D;
  let vb = p.v_off + b * p.v_bs + h * D;
  for (var j0 = 0u; j0 < tilesEnd; j0 += TK) {
    let n = min(TK, tilesEnd - j0);
    for (var e = lid; e < n * D; e += WG) {
      let jj = e / D;
      let d = e % D;
      ks[jj * DS + d] = k[kb + (j0 + jj) * p.k_rs + d];
      vs[jj * DS + d] = v[vb + (j0 + jj) * p.v_rs + d];
    }
    workgroupBarrier();
    // Rows jj >= n hold an earlier tile's (or zero) values: finite, and masked (end <= tilesEnd).
    var tileMax = -3.0e38;
    for (var t = 0u; t < KPL; t++) {
      let jj = l + LN * t;
      var dot = 0.0;
      for (var d = 0u; d < D; d++) { dot += qs[qi * DS + d] * ks[jj * DS + d]; }
      s[t] = select(-3.0e38, dot, j0 + jj < end);
      tileMax = max(tileMax, s[t]);
    }
    red[lid] = tileMax;
    workgroupBarrier();
    var m = mx;
    for (var u = 0u; u < LN; u++) { m = max(m, red[qi * LN + u]); }
    let corr = exp(mx - m);
    mx = m;
    sum *= corr;
    for (var t = 0u; t < KPL; t++) {
      let e = select(0.0, exp(s[t] - m), s[t] > -3.0e38);
      sum += e;
      ps[qi * PS + l + LN * t] = e;
    }
    workgroupBarrier();
    for (var u = 0u; u < CH; u++) { acc[u] *= corr; }
    for (var jj = 0u; jj < n; jj++) {
      let e = ps[qi * PS + jj];
      // Channels past D (the last lanes when LANES does not divide D) read channel D - 1 and are not stored.
      for (var u = 0u; u < CH; u++) { acc[u] += e * vs[jj * DS + min(l + LN * u, D - 1u)]; }
    }
    workgroupBarrier();
  }
  red[lid] = sum;
  workgroupBarrier();
  if (i0 + qi < p.Lq) {
    var total = 0.0;
    for (var u = 0u; u < LN; u++) { total += red[qi * LN + u]; }
    let inv = 1.0 / total;
    let ob = p.o_off + b * p.o_bs + i * p.o_rs + h * D;
    for (var u = 0u; u < CH; u++) {
      let c = l + LN * u;
      if (c < D) { o[ob + c] = acc[u] * inv; }
    }
  }
}
