// layernorm: y = (x - mean) / sqrt(var + eps) * gamma + beta over the last dim   (torch.nn.LayerNorm)
//   x [rows, C], gamma [C], beta [C], y [rows, C]; var is the biased variance, as PyTorch's.
// Variant 'rows' (layer_norm's general one, the CPU drivers'): one invocation per row, two passes
// over the row (mean, then centred variance) in f32. 'wg' (layernorm_wg): one workgroup per row.
struct Params { rows: u32, C: u32, eps: f32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (row >= p.rows) { return; }
  let base = row * p.C;
  var sum = 0.0;
  for (var c = 0u; c < p.C; c++) { sum += x[base + c]; }
  let mean = sum / f32(p.C);
  var sq = 0.0;
  for (var c = 0u; c < p.C; c++) { let d = x[base + c] - mean; sq += d * d; }
  let inv = inverseSqrt(sq / f32(p.C) + p.eps);
  for (var c = 0u; c < p.C; c++) { y[base + c] = (x[base + c] - mean) * inv * gamma[c] + beta[c]; }
}
