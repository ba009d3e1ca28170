// conv_wino_pack: a 3x3 conv weight in the Winograd F(2x2, 3x3) domain (done once per weight)
//   w  [Cout, Cin, 3, 3]     torch.nn.Conv2d weight
//   u  [16, Cin4, Cop4] vec4 u[p, ci, co] = (G g G^T)[p / 4, p % 4] for g = w[co, ci], zero for
//                            ci >= Cin or co >= Cout; Cin4 = ceil(Cin/4)*4, Cop4 = ceil(Cout/4)
//                            vec4s of 4 output channels: 16 matrices in the [K, N] layout of
//                            linear_kn_sg (conv_wino_* and conv-ops.ts conv2d 'winograd')
//   G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]        (Lavin & Gray, 2016)
// One invocation per (ci, vec4 of output channels).
struct Params { Cout: u32, Cin: u32, Cin4: u32, Cop4: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> u: array<vec4f>;

/** G g G^T for one 3x3 kernel g (row-major), as 16 values row-major. */
fn transform(g: array<f32, 9>) -> array<f32, 16> {
  // Rows first: t = G g, 4 x 3.
  var t: array<f32, 12>;
  for (var c = 0u; c < 3u; c++) {
    let g0 = g[c];
    let g1 = g[3u + c];
    let g2 = g[6u + c];
    t[c] = g0;
    t[3u + c] = 0.5 * (g0 + g1 + g2);
    t[6u + c] = 0.5 * (g0 - g1 + g2);
    t[9u + c] = g2;
  }
  // Then columns: (G g) G^T, 4 x 4.
  var o: array<f32, 16>;
  for (var r = 0u; r < 4u; r++) {
    let a = t[3u * r];
    let b = t[3u * r + 1u];
    let c = t[3u * r + 2u];
    o[4u * r] = a;
    o[4u * r + 1u] = 0.5 * (a + b + c);
    o[4u * r + 2u] = 0.5 * (a - b + c);
    o[4u * r + 3u] = c;
  }
  return o;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (idx >= p.Cin4 * p.Cop4) { return; }
  let ci = idx / p.Cop4;
  let c4 = idx % p.Cop4;
  var out: array<vec4f, 16>;
  for (var c = 0u; c < 4u; c++) {
    let co = 4u * c4 + c;
    if (co >= p.Cout || ci >= p.Cin) { continue; }
    var g: array<f32, 9>;
    for (var k = 0u; k < 9u; k++) { g[k] = w[(co * p.Cin + ci) * 9u + k]; }
    let m = transform(g);
    for (var q = 0u; q < 16u; q++) { out[q][c] = m[q]; }
  }
  for (var q = 0u; q < 16u; q++) { u[(q * p.Cin4 + ci) * p.Cop4 + c4] = out[q]; }
}
