// resize_bilinear: y = F.interpolate(x, size=(OH, OW), mode="bilinear", align_corners=False)
//   (no antialias). Per axis: src = max((dst + 0.5) * scale - 0.5, 0) with scale = in / out (f32),
//   i0 = floor(src), i1 = min(i0 + 1, in - 1), l = src - i0; the value is the 2x2 blend
//   (1-ly)((1-lx) x[i0,j0] + lx x[i0,j1]) + ly((1-lx) x[i1,j0] + lx x[i1,j1]). Up- and downscaling.
//   x [B, C, H, W] NCHW at x_off, y [B, C, OH, OW] at y_off
// One invocation per output value.
struct Params { n: u32, H: u32, W: u32, OH: u32, OW: u32, scaleH: f32, scaleW: f32, x_off: u32, y_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

struct Taps { i0: u32, i1: u32, l: f32, }

// Source taps of output index `dst` along an axis of `size` input values.
fn taps(dst: u32, scale: f32, size: u32) -> Taps {
  let src = max((f32(dst) + 0.5) * scale - 0.5, 0.0);
  let i0 = min(u32(src), size - 1u);
  return Taps(i0, min(i0 + 1u, size - 1u), src - f32(i0));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (idx >= p.n) { return; }
  let ty = taps((idx / p.OW) % p.OH, p.scaleH, p.H);
  let tx = taps(idx % p.OW, p.scaleW, p.W);
  let base = p.x_off + (idx / (p.OW * p.OH)) * p.H * p.W;
  let r0 = base + ty.i0 * p.W;
  let r1 = base + ty.i1 * p.W;
  let top = (1.0 - tx.l) * x[r0 + tx.i0] + tx.l * x[r0 + tx.i1];
  let bottom = (1.0 - tx.l) * x[r1 + tx.i0] + tx.l * x[r1 + tx.i1];
  y[p.y_off + idx] = (1.0 - ty.l) * top + ty.l * bottom;
}
