// conv_wino_pack: a 3x3 conv weight in the Winograd F(TILE x TILE, 3x3) domain (done once per weight)
//   w  [Cout, Cin, 3, 3]     torch.nn.Conv2d weight
//   u  [P, Cin4, Cop4] vec4  u[p, ci, co] = (G g G^T)[p / N, p % N] for g = w[co, ci], zero for
//                            ci >= Cin or co >= Cout; N = TILE + 2, P = N * N; Cin4 = ceil(Cin/4)*4,
//                            Cop4 = ceil(Cout/4) vec4s of 4 output channels: P matrices in the
//                            [K, N] layout of linear_kn_sg (conv2d/winograd.ts: 'winograd', 'winograd4')
// Variants: TILE ({{TILE}}, a placeholder: the array sizes) 2 or 4 (Lavin & Gray, 2016):
//   TILE 2: G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
//   TILE 4: G = [[1/4, 0, 0], [-1/6, -1/6, -1/6], [-1/6, 1/6, -1/6], [1/24, 1/12, 1/6],
//               [1/24, -1/12, 1/6], [0, 0, 1]]                     (interpolation points 0, +-1, +-2)
// One invocation per (ci, vec4 of output channels).
struct Params { Cout: u32, Cin: u32, Cin4: u32, Cop4: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> u: array<vec4f>;

const N: u32 = {{TILE}}u + 2u;

/** G v for one 3-vector v. */
fn g_2(a: f32, b: f32, c: f32) -> array<f32, 4> {
  return array<f32, 4>(a, 0.5 * (a + b + c), 0.5 * (a - b + c), c);
}
fn g_4(a: f32, b: f32, c: f32) -> array<f32, 6> {
  return array<f32, 6>(0.25 * a, -(a + b + c) / 6.0, -(a - b + c) / 6.0, a / 24.0 + b / 12.0 + c / 6.0, a / 24.0 - b / 12.0 + c / 6.0, c);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (idx >= p.Cin4 * p.Cop4) { return; }
  let ci = idx / p.Cop4;
  let c4 = idx % p.Cop4;
  var out: array<vec4f, N * N>;
  for (var c = 0u; c < 4u; c++) {
    let co = 4u * c4 + c;
    if (co >= p.Cout || ci >= p.Cin) { continue; }
    let o = (co * p.Cin + ci) * 9u;
    // Columns first: t = G g (N x 3), one column of g at a time; then rows: (G g) G^T (N x N).
    var t: array<array<f32, 3>, N>;
    for (var k = 0u; k < 3u; k++) {
      let col = g_{{TILE}}(w[o + k], w[o + 3u + k], w[o + 6u + k]);
      for (var i = 0u; i < N; i++) { t[i][k] = col[i]; }
    }
    for (var i = 0u; i < N; i++) {
      let row = g_{{TILE}}(t[i][0], t[i][1], t[i][2]);
      for (var j = 0u; j < N; j++) { out[N * i + j][c] = row[j]; }
    }
  }
  for (var q = 0u; q < N * N; q++) { u[(q * p.Cin4 + ci) * p.Cop4 + c4] = out[q]; }
}
