// groupnorm_vec4: y = (x - mean[b, g]) * rstd[b, g] * gamma[c] + beta[c], then optionally SiLU
//                                        (torch.nn.GroupNorm(G, C, eps, affine=True) [+ F.silu])
//   x     [B, C, H, W] NCHW at x_off, read as vec4 (H*W and x_off multiples of 4); channel c belongs to group g = c / (C/G)
//   stats [B*G, 2] at stats_off: (mean, rstd) per group, from groupnorm_stats_vec4 + groupnorm_stats_combine
//         or groupnorm_stats_wg + groupnorm_stats_combine_wg
//   gamma [C], beta [C]
//   y     [B, C, H, W] at y_off, written as vec4 (y_off a multiple of 4)
// Flags (uniforms, so one pipeline serves every combination): silu = 1 applies y * sigmoid(y) (the decoder's nonlinearity).
// One invocation per 4 vec4s of one (b, c) row of H*W (the last ones of a row fewer): a vec4 load
// and store cost a CPU driver about as much as one scalar access each.
struct Params { B: u32, C: u32, G: u32, HW4: u32, blocks: u32, x_off: u32, stats_off: u32, y_off: u32, silu: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4f>;


@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (idx >= p.B * p.C * p.blocks) { return; }
  let row = idx / p.blocks; // b * C + c
  let c = row % p.C;
  let seg = (row / p.C) * p.G + c / (p.C / p.G);
  let mean = stats[p.stats_off + seg * 2u];
  let scale = stats[p.stats_off + seg * 2u + 1u] * gamma[c];
  let shift = beta[c] - mean * scale;
  let first = (idx % p.blocks) * 4u;
  let xb = p.x_off / 4u + row * p.HW4 + first;
  let yb = p.y_off / 4u + row * p.HW4 + first;
  for (var i = 0u; i < min(4u, p.HW4 - first); i++) {
    var v = fma(x[xb + i], vec4f(scale), vec4f(shift));
    if (p.silu == 1u) { v = v / (1.0 + exp(-v)); }
    y[yb + i] = v;
  }
}
