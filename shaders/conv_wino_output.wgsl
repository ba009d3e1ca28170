// conv_wino_output: the Winograd F(2x2, 3x3) output transform, + bias [+ residual]
//   m        [16, Tc, Cout]    the 16 GEMM outputs of a chunk of tiles (linear_kn_sg)
//   bias     [Cout]
//   residual [B, Cout, H, W]   added when HAS_RESIDUAL = 1 (else any buffer), at r_off
//   y        [B, Cout, H, W]   NCHW at y_off: y[b, co, 2ty + r, 2tx + c] = (A^T m A)[r, c] + bias[co]
//                              for the tile's outputs inside the image
//   A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]   (Lavin & Gray, 2016)
// Tiles numbered as in conv_wino_input (chunk t = tile t0 + t). One invocation per output channel
// and run of RUN consecutive tiles (co fastest), as in conv_wino_input.
// Variants (override constants): HAS_RESIDUAL.
struct Params { Cout: u32, H: u32, W: u32, TH: u32, TW: u32, t0: u32, Tc: u32, r_off: u32, y_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> m: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

override HAS_RESIDUAL: u32 = 0u;
const RUN: u32 = 4u;

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
    var q: array<vec4f, 4>; // q[i][j] = m[4i + j, t, co]
    for (var i = 0u; i < 4u; i++) {
      for (var j = 0u; j < 4u; j++) { q[i][j] = m[(4u * i + j) * plane + t * p.Cout + co]; }
    }
    // Rows: A^T q (2 vec4 rows), then columns.
    let r0 = q[0] + q[1] + q[2];
    let r1 = q[1] - q[2] - q[3];
    let out = array<vec2f, 2>(vec2f(r0.x + r0.y + r0.z, r0.y - r0.z - r0.w), vec2f(r1.x + r1.y + r1.z, r1.y - r1.z - r1.w));
    for (var r = 0u; r < 2u; r++) {
      let oy = 2u * ty + r;
      for (var c = 0u; c < 2u; c++) {
        let ox = 2u * tx + c;
        if (oy < p.H && ox < p.W) {
          let o = ((b * p.Cout + co) * p.H + oy) * p.W + ox;
          var val = out[r][c] + bv;
          if (HAS_RESIDUAL == 1u) { val += residual[p.r_off + o]; }
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
