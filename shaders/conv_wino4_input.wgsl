// conv_wino4_input: the Winograd F(4x4, 3x3) input transform of a chunk of 4x4 output tiles
//   x  [B, Cin, H, W]        NCHW at x_off (element offset of batch item 0 in the bound range)
//   v  [36, Tc, Cin4]        v[p, t, ci] = (B^T d B)[p / 6, p % 6] for the 6x6 input patch d of
//                            tile t0 + t and channel ci (zero outside the image, padding 1, and
//                            for ci >= Cin); Cin4 = ceil(Cin/4)*4, so each v[p] is a GEMM input
//                            [Tc, Cin4] for linear_kn_sg
//   B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
//          [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]     (Lavin & Gray, 2016)
// Tiles are numbered (b, ty, tx) over TH = ceil(H/4) by TW = ceil(W/4) per image; tile (ty, tx)
// makes outputs (4ty..4ty+3, 4tx..4tx+3) from inputs (4ty-1..4ty+4, 4tx-1..4tx+4).
// One invocation per channel ci and run of RUN consecutive tiles (ci fastest), as in
// conv_wino_input (the F(2x2, 3x3) transform).
struct Params { Cin: u32, Cin4: u32, H: u32, W: u32, TH: u32, TW: u32, t0: u32, Tc: u32, x_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;

const RUN: u32 = 4u;

/** B^T v for one 6-vector v. */
fn bt(v: array<f32, 6>) -> array<f32, 6> {
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
    var d: array<array<f32, 6>, 6>; // d[i][j] = x[b, ci, 4ty - 1 + i, 4tx - 1 + j], zero outside
    for (var i = 0u; i < 6u; i++) {
      let iy = i32(4u * ty + i) - 1;
      let rowOk = chOk && iy >= 0 && iy < i32(p.H);
      let row = base + u32(clamp(iy, 0, i32(p.H) - 1)) * p.W;
      for (var j = 0u; j < 6u; j++) {
        let ix = i32(4u * tx + j) - 1;
        d[i][j] = select(0.0, x[row + u32(clamp(ix, 0, i32(p.W) - 1))], rowOk && ix >= 0 && ix < i32(p.W));
      }
    }
    // Columns: s = B^T d, one column at a time; then rows: (B^T d) B.
    var s: array<array<f32, 6>, 6>;
    for (var j = 0u; j < 6u; j++) {
      let c = bt(array<f32, 6>(d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j]));
      for (var i = 0u; i < 6u; i++) { s[i][j] = c[i]; }
    }
    for (var i = 0u; i < 6u; i++) {
      let o = bt(s[i]);
      for (var j = 0u; j < 6u; j++) { v[(6u * i + j) * plane + t * p.Cin4 + ci] = o[j]; }
    }
    tx++;
    if (tx == p.TW) {
      tx = 0u;
      ty++;
      if (ty == p.TH) { ty = 0u; b++; }
    }
  }
}
