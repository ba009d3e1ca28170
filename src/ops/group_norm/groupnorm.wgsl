// groupnorm: y = (x - mean[b, g]) * rstd[b, g] * gamma[c] + beta[c], then optionally SiLU
//                                        (torch.nn.GroupNorm(G, C, eps, affine=True) [+ F.silu])
//   x     [B, C, H, W] NCHW at x_off; channel c belongs to group g = c / (C/G)
//   stats [B*G, 2] at stats_off: (mean, rstd) per group, from groupnorm_stats + groupnorm_stats_combine
//   gamma [C], beta [C]
//   y     [B, C, H, W] at y_off
// Flags (uniforms, so one pipeline serves every combination): silu = 1 applies y * sigmoid(y) (the decoder's nonlinearity).
// One invocation per 4 consecutive values of one (b, c) row of H*W (the last quad of a row shorter).
struct Params { B: u32, C: u32, G: u32, HW: u32, quads: u32, x_off: u32, stats_off: u32, y_off: u32, silu: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;


@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (idx >= p.B * p.C * p.quads) { return; }
  let row = idx / p.quads; // b * C + c
  let c = row % p.C;
  let seg = (row / p.C) * p.G + c / (p.C / p.G);
  let mean = stats[p.stats_off + seg * 2u];
  let scale = stats[p.stats_off + seg * 2u + 1u] * gamma[c];
  let shift = beta[c];
  let first = (idx % p.quads) * 4u;
  let base = row * p.HW + first;
  for (var i = 0u; i < min(4u, p.HW - first); i++) {
    var v = (x[p.x_off + base + i] - mean) * scale + shift;
    if (p.silu == 1u) { v = v / (1.0 + exp(-v)); }
    y[p.y_off + base + i] = v;
  }
}
