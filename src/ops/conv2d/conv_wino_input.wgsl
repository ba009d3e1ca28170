// conv_wino_input: the Winograd F(TILE x TILE, 3x3) input transform of a chunk of output tiles
//   x  [B, Cin, H, W]        NCHW at x_off (element offset of batch item 0 in the bound range)
//   v  [P, Tc, Cin4]         v[p, t, ci] = (B^T d B)[p / N, p % N] for the N x N input patch d of
//                            tile t0 + t and channel ci (zero outside the image, padding 1, and
//                            for ci >= Cin); N = TILE + 2, P = N * N, Cin4 = ceil(Cin/4)*4, so each
//                            v[p] is a GEMM input [Tc, Cin4] for linear_kn_sg
// Placeholders: RUN ({{RUN}}) tiles per invocation; TILE ({{TILE}}: the array sizes) 2 or 4 (Lavin & Gray, 2016):
//   TILE 2: B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
//   TILE 4: B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
//                  [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
// Tiles are numbered (b, ty, tx) over TH = ceil(H/TILE) by TW = ceil(W/TILE) per image; tile
// (ty, tx) makes outputs (TILE ty .. + TILE-1, TILE tx .. + TILE-1) from the inputs one further
// on each side. One invocation per channel ci and run of RUN consecutive tiles (ci fastest): the
// tile coordinates advance without divisions (integer division is scalarised on CPU drivers)
// and the loads are clamped and selected rather than branched around.
struct Params { Cin: u32, Cin4: u32, H: u32, W: u32, TH: u32, TW: u32, t0: u32, Tc: u32, x_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;

const TILE: u32 = {{TILE}}u;
const N: u32 = TILE + 2u;
const RUN: u32 = {{RUN}}u;

/** B^T v for one N-vector v. */
fn bt_2(v: array<f32, 4>) -> array<f32, 4> {
  return array<f32, 4>(v[0] - v[2], v[1] + v[2], v[2] - v[1], v[1] - v[3]);
}
fn bt_4(v: array<f32, 6>) -> array<f32, 6> {
  return array<f32, 6>(
    4.0 * v[0] - 5.0 * v[2] + v[4],
    v[3] + v[4] - 4.0 * (v[1] + v[2]),
    v[4] - v[3] + 4.0 * (v[1] - v[2]),
    v[4] - v[2] + 2.0 * (v[3] - v[1]),
    v[4] - v[2] + 2.0 * (v[1] - v[3]),
    4.0 * v[1] - 5.0 * v[3] + v[5]);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  let ci = idx % p.Cin4;
  let t1 = (idx / p.Cin4) * RUN; // first tile of the run, in the chunk
  if (t1 >= p.Tc) { return; }
  let tg = p.t0 + t1;
  var tx = tg % p.TW;
  var ty = (tg / p.TW) % p.TH;
  var b = tg / (p.TW * p.TH);
  let chOk = ci < p.Cin;
  let plane = p.Tc * p.Cin4;
  for (var k = 0u; k < RUN; k++) {
    let t = t1 + k;
    if (t >= p.Tc) { break; }
    let base = p.x_off + (b * p.Cin + min(ci, p.Cin - 1u)) * p.H * p.W;
    var d: array<array<f32, N>, N>; // d[i][j] = x[b, ci, TILE ty - 1 + i, TILE tx - 1 + j], zero outside
    for (var i = 0u; i < N; i++) {
      let iy = i32(TILE * ty + i) - 1;
      let rowOk = chOk && iy >= 0 && iy < i32(p.H);
      let row = base + u32(clamp(iy, 0, i32(p.H) - 1)) * p.W;
      for (var j = 0u; j < N; j++) {
        let ix = i32(TILE * tx + j) - 1;
        d[i][j] = select(0.0, x[row + u32(clamp(ix, 0, i32(p.W) - 1))], rowOk && ix >= 0 && ix < i32(p.W));
      }
    }
    // Columns: s = B^T d, one column at a time; then rows: (B^T d) B.
    var s: array<array<f32, N>, N>;
    for (var j = 0u; j < N; j++) {
      var col: array<f32, N>;
      for (var i = 0u; i < N; i++) { col[i] = d[i][j]; }
      let c = bt_{{TILE}}(col);
      for (var i = 0u; i < N; i++) { s[i][j] = c[i]; }
    }
    for (var i = 0u; i < N; i++) {
      let o = bt_{{TILE}}(s[i]);
      for (var j = 0u; j < N; j++) { v[(N * i + j) * plane + t * p.Cin4 + ci] = o[j]; }
    }
    tx++;
    if (tx == p.TW) {
      tx = 0u;
      ty++;
      if (ty == p.TH) { ty = 0u; b++; }
    }
  }
}
