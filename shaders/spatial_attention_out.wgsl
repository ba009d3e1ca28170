// spatial_attention_out: o[b, c, i] = sum_j v[b, c, j] * a[b, i, j]
//                                        (AttnBlock: torch.bmm(v.reshape(B,C,N), w_.permute(0,2,1)))
//   v [B, C, N] NCHW with N = H*W positions at v_off
//   a [B, N, N] attention weights (row i = query position, softmax over j) at a_off
//   o [B, C, N] at o_off
// Each invocation computes a 4x4 block (4 channels c x 4 query positions i) in registers, with no
// shared memory; the 64 invocations of a workgroup share their 4 channels (uniform v loads) and
// cover 64 position quads. Any C and N.
struct Params { B: u32, C: u32, N: u32, quads: u32, posGroups: u32, chBlocks: u32, v_off: u32, a_off: u32, o_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.B * p.chBlocks * p.posGroups) { return; }
  let c0 = ((g / p.posGroups) % p.chBlocks) * 4u;
  let b = g / (p.posGroups * p.chBlocks);
  let quad = (g % p.posGroups) * 64u + lid;
  if (quad >= p.quads) { return; }
  let i0 = quad * 4u;
  // Channels/positions past C/N read the last one and are never stored.
  var vr: array<u32, 4>;
  var ar: array<u32, 4>;
  for (var t = 0u; t < 4u; t++) {
    vr[t] = p.v_off + (b * p.C + min(c0 + t, p.C - 1u)) * p.N;
    ar[t] = p.a_off + (b * p.N + min(i0 + t, p.N - 1u)) * p.N;
  }
  var acc: array<vec4f, 4>; // acc[channel][position]
  let N4 = p.N & ~3u;
  var j = 0u;
  for (; j < N4; j += 4u) {
    let a0 = vec4f(a[ar[0] + j], a[ar[0] + j + 1u], a[ar[0] + j + 2u], a[ar[0] + j + 3u]);
    let a1 = vec4f(a[ar[1] + j], a[ar[1] + j + 1u], a[ar[1] + j + 2u], a[ar[1] + j + 3u]);
    let a2 = vec4f(a[ar[2] + j], a[ar[2] + j + 1u], a[ar[2] + j + 2u], a[ar[2] + j + 3u]);
    let a3 = vec4f(a[ar[3] + j], a[ar[3] + j + 1u], a[ar[3] + j + 2u], a[ar[3] + j + 3u]);
    for (var t = 0u; t < 4u; t++) {
      let vv = vec4f(v[vr[t] + j], v[vr[t] + j + 1u], v[vr[t] + j + 2u], v[vr[t] + j + 3u]);
      acc[t] += vec4f(dot(vv, a0), dot(vv, a1), dot(vv, a2), dot(vv, a3));
    }
  }
  for (; j < p.N; j++) {
    let aj = vec4f(a[ar[0] + j], a[ar[1] + j], a[ar[2] + j], a[ar[3] + j]);
    for (var t = 0u; t < 4u; t++) { acc[t] += v[vr[t] + j] * aj; }
  }
  for (var t = 0u; t < 4u; t++) {
    let c = c0 + t;
    if (c >= p.C) { break; }
    for (var u = 0u; u < 4u; u++) {
      let i = i0 + u;
      if (i >= p.N) { break; }
      o[p.o_off + (b * p.C + c) * p.N + i] = acc[t][u];
    }
  }
}
