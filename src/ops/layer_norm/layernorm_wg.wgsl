// layernorm_wg: y = (x - mean) / sqrt(var + eps) * gamma + beta over the last dim   (torch.nn.LayerNorm)
//   x [rows, C], gamma [C], beta [C], y [rows, C]; var is the biased variance, as PyTorch's.
// Variant 'wg' (layer_norm's GPU one; 'rows', layernorm.wgsl, is the general one): one workgroup
// per row, so that a batch-1 encoder layer (729 rows) fills a GPU instead of ~12 workgroups.
// Its WG invocations stride over C (invocation l takes c = l, l + WG, ...; coalesced loads); the
// statistics are two passes as in 'rows' (the sum, then the centred squares), each merged by a tree
// reduction in workgroup memory (no subgroup features: it runs on every adapter). The row is read
// three times; at the model's C (1152 floats) it stays in cache between the passes.
struct Params { rows: u32, C: u32, eps: f32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;

var<workgroup> red: array<f32, WG>;

// The sum of every invocation's `v`, returned to all of them (red is free again on return).
fn workgroup_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { red[lid] += red[lid + stride]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // everyone has read red[0] before the next call writes it
  return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; } // uniform across the workgroup: the barriers below stay uniform
  let base = row * p.C;
  var sum = 0.0;
  for (var c = lid; c < p.C; c += WG) { sum += x[base + c]; }
  let mean = workgroup_sum(lid, sum) / f32(p.C);
  var sq = 0.0;
  for (var c = lid; c < p.C; c += WG) { let d = x[base + c] - mean; sq += d * d; }
  let inv = inverseSqrt(workgroup_sum(lid, sq) / f32(p.C) + p.eps);
  for (var c = lid; c < p.C; c += WG) { y[base + c] = (x[base + c] - mean) * inv * gamma[c] + beta[c]; }
}
