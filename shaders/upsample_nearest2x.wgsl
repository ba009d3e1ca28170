// upsample_nearest2x: y[b, c, i, j] = x[b, c, i / 2, j / 2]
//                                        (F.interpolate(x, scale_factor=2.0, mode="nearest"))
//   x [B, C, H, W] NCHW at x_off, y [B, C, 2H, 2W] at y_off
// One invocation per output value.
struct Params { n: u32, H: u32, W: u32, x_off: u32, y_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (idx >= p.n) { return; }
  let W2 = 2u * p.W;
  let j = idx % W2;
  let i = (idx / W2) % (2u * p.H);
  let plane = idx / (W2 * 2u * p.H); // b * C + c
  y[p.y_off + idx] = x[p.x_off + (plane * p.H + i / 2u) * p.W + j / 2u];
}
