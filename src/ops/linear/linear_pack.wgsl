// linear_pack: the weight of a linear layer in the layout of the linear_kn* kernels (done once per weight)
//   w   [N, K]          PyTorch Linear weight (out_features, in_features); conv weights [N, Cin, k, k] as [N, Cin*k*k]
//   wt  [K, Np] vec4    wt[k, n] = w[n, k] for n < N, 0 for N <= n < Np, Np = ceil(N/4)*4 (viewed as [K, Np/4] vec4)
// One invocation per vec4 of wt.
struct Params { N: u32, K: u32, Np4: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> wt: array<vec4f>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (idx >= p.K * p.Np4) { return; }
  let k = idx / p.Np4;
  let n0 = (idx % p.Np4) * 4u;
  var v = vec4f(0.0);
  for (var c = 0u; c < 4u; c++) {
    if (n0 + c < p.N) { v[c] = w[(n0 + c) * p.K + k]; }
  }
  wt[idx] = v;
}
