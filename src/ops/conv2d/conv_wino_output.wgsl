// conv_wino_output: the Winograd F(TILE x TILE, 3x3) output transform, + bias [+ residual]
//   m        [P, Tc, Cout]     the P = (TILE + 2)^2 GEMM outputs of a chunk of tiles (linear_kn_sg)
//   bias     [Cout]
//   residual [B, Cout, H, W]   added when hasResidual = 1 (else any buffer), at r_off
//   y        [B, Cout, H, W]   NCHW at y_off: y[b, co, TILE ty + r, TILE tx + c] = (A^T m A)[r, c]
//                              + bias[co] for the tile's outputs inside the image
// Placeholders: RUN ({{RUN}}) tiles per invocation; TILE ({{TILE}}: the array sizes) 2 or 4 (Lavin & Gray, 2016):
//   TILE 2: A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
//   TILE 4: A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
// Flag (uniform) hasResidual. Tiles numbered as in conv_wino_input (chunk t = tile t0 + t);
// one invocation per output channel and run of RUN consecutive tiles (co fastest), as there.
struct Params { Cout: u32, H: u32, W: u32, TH: u32, TW: u32, t0: u32, Tc: u32, r_off: u32, y_off: u32, hasResidual: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> m: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TILE: u32 = {{TILE}}u;
const N: u32 = TILE + 2u;
const RUN: u32 = {{RUN}}u;

/** A^T v for one N-vector v. */
fn at_2(v: array<f32, 4>) -> array<f32, 2> {
  return array<f32, 2>(v[0] + v[1] + v[2], v[1] - v[2] - v[3]);
}
fn at_4(v: array<f32, 6>) -> array<f32, 4> {
  return array<f32, 4>(
    v[0] + v[1] + v[2] + v[3] + v[4],
    v[1] - v[2] + 2.0 * (v[3] - v[4]),
    v[1] + v[2] + 4.0 * (v[3] + v[4]),
    v[1] - v[2] + 8.0 * (v[3] - v[4]) + v[5]);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  let co = idx % p.Cout;
  let t1 = (idx / p.Cout) * RUN;
  if (t1 >= p.Tc) { return; }
  let tg = p.t0 + t1;
  var tx = tg % p.TW;
  var ty = (tg / p.TW) % p.TH;
  var b = tg / (p.TW * p.TH);
  let plane = p.Tc * p.Cout;
  let bv = bias[co];
  for (var k = 0u; k < RUN; k++) {
    let t = t1 + k;
    if (t >= p.Tc) { break; }
    // Columns: c[j] = A^T q[:, j] (rows 0 .. TILE-1 of A^T q); then rows: (A^T q) A.
    var c: array<array<f32, TILE>, N>;
    for (var j = 0u; j < N; j++) {
      var col: array<f32, N>;
      for (var i = 0u; i < N; i++) { col[i] = m[(N * i + j) * plane + t * p.Cout + co]; }
      c[j] = at_{{TILE}}(col);
    }
    for (var r = 0u; r < TILE; r++) {
      let oy = TILE * ty + r;
      var rowv: array<f32, N>;
      for (var j = 0u; j < N; j++) { rowv[j] = c[j][r]; }
      let out = at_{{TILE}}(rowv);
      for (var cc = 0u; cc < TILE; cc++) {
        let ox = TILE * tx + cc;
        if (oy < p.H && ox < p.W) {
          let o = ((b * p.Cout + co) * p.H + oy) * p.W + ox;
          var val = out[cc] + bv;
          if (p.hasResidual == 1u) { val += residual[p.r_off + o]; }
          y[p.y_off + o] = val;
        }
      }
    }
    tx++;
    if (tx == p.TW) {
      tx = 0u;
      ty++;
      if (ty == p.TH) { ty = 0u; b++; }
    }
  }
}
