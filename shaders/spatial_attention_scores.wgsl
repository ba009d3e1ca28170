// spatial_attention_scores: s[b, i, j] = scale * sum_c q[b, c, i] * k[b, c, j]
//                                        (AttnBlock: torch.bmm(q.reshape(B,C,N).permute(0,2,1), k.reshape(B,C,N)) * C^-0.5)
//   q, k [B, C, N] NCHW with N = H*W positions (q at q_off, k at k_off)
//   s    [B, N, N] at s_off
// Each invocation computes a 4x4 block (4 query rows i x 4 key columns j) in registers, with no
// shared memory; the 64 invocations of a workgroup share their 4 query rows (uniform q loads) and
// cover 64 column quads. Any C and N.
struct Params { B: u32, C: u32, N: u32, quads: u32, colGroups: u32, rowBlocks: u32, scale: f32, q_off: u32, k_off: u32, s_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read_write> s: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.B * p.rowBlocks * p.colGroups) { return; }
  let i0 = ((g / p.colGroups) % p.rowBlocks) * 4u;
  let b = g / (p.colGroups * p.rowBlocks);
  let quad = (g % p.colGroups) * 64u + lid;
  if (quad >= p.quads) { return; }
  let j0 = quad * 4u;
  // Rows/columns past N read the last position and are never stored.
  var qi: array<u32, 4>;
  var kj: array<u32, 4>;
  for (var t = 0u; t < 4u; t++) {
    qi[t] = p.q_off + b * p.C * p.N + min(i0 + t, p.N - 1u);
    kj[t] = p.k_off + b * p.C * p.N + min(j0 + t, p.N - 1u);
  }
  var acc: array<vec4f, 4>; // acc[row][column]
  for (var c = 0u; c < p.C; c++) {
    let o = c * p.N;
    let kv = vec4f(k[kj[0] + o], k[kj[1] + o], k[kj[2] + o], k[kj[3] + o]);
    for (var t = 0u; t < 4u; t++) { acc[t] += q[qi[t] + o] * kv; }
  }
  for (var t = 0u; t < 4u; t++) {
    let i = i0 + t;
    if (i >= p.N) { break; }
    for (var u = 0u; u < 4u; u++) {
      let j = j0 + u;
      if (j >= p.N) { break; }
      s[p.s_off + (b * p.N + i) * p.N + j] = acc[t][u] * p.scale;
    }
  }
}
