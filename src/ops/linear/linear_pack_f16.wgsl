// linear_pack_f16: the weight of a linear layer as packed halves for linear_kn_sg_f16 (done once per weight)
//   w    [N, K]            PyTorch Linear weight (out_features, in_features)
//   wh   [K, Np/8] vec4u   wh[k, c] = 8 weights w[8c .. 8c+7, k] as IEEE half pairs (pack2x16float,
//                          lower column in the low half), zero for columns N <= n < Np = ceil(N/8)*8
// One invocation per vec4u of wh.
struct Params { N: u32, K: u32, Np8: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> wh: array<vec4u>;

fn at(n: u32, k: u32) -> f32 {
  if (n >= p.N) { return 0.0; }
  return w[n * p.K + k];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (idx >= p.K * p.Np8) { return; }
  let k = idx / p.Np8;
  let n0 = (idx % p.Np8) * 8u;
  var v: vec4u;
  for (var c = 0u; c < 4u; c++) { v[c] = pack2x16float(vec2f(at(n0 + 2u * c, k), at(n0 + 2u * c + 1u, k))); }
  wh[idx] = v;
}
