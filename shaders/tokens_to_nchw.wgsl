// tokens_to_nchw: y[b, c, l] = x[b, l, c]
//                                        (x.reshape(B, h, w, C).permute(0, 3, 1, 2).contiguous())
//   x [B, L, C] tokens in raster order (l = row * w + col) at x_off
//   y [B, C, L] = NCHW [B, C, h, w] at y_off
// One invocation per output value.
struct Params { n: u32, L: u32, C: u32, x_off: u32, y_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (idx >= p.n) { return; }
  let l = idx % p.L;
  let c = (idx / p.L) % p.C;
  let b = idx / (p.L * p.C);
  y[p.y_off + idx] = x[p.x_off + (b * p.L + l) * p.C + c];
}
