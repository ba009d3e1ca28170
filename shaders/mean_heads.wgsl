// mean_heads: y = x.mean(dim=heads)          (torch.mean over the head axis of attention outputs)
//   x [rows, H, D] (heads concatenated along the last dim), y [rows, D]; summed in head order
//   in f32, then divided by H.
struct Params { rows: u32, H: u32, D: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= p.rows * p.D) { return; }
  let d = i % p.D;
  let base = (i / p.D) * p.H * p.D + d;
  var s = 0.0;
  for (var h = 0u; h < p.H; h++) { s += x[base + h * p.D]; }
  y[i] = s / f32(p.H);
}
