// to_rgb8: the official saver's 8-bit image (inference.py save_images):
//   v = clamp((x + 1) * 127.5, 0, 255) in float32, then TRUNCATED to uint8 (numpy astype(uint8)),
//   not rounded; packed per pixel as R | G << 8 | B << 16.
//   x f32 [B, 3, HW] (NCHW), out u32 [B, HW].
struct Params { B: u32, HW: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

fn to8(v: f32) -> u32 {
  return u32(clamp((v + 1.0) * 127.5, 0.0, 255.0));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (idx >= p.B * p.HW) { return; }
  let i = idx % p.HW;
  let base = (idx / p.HW) * 3u * p.HW + i;
  out[idx] = to8(x[base]) | (to8(x[base + p.HW]) << 8u) | (to8(x[base + 2u * p.HW]) << 16u);
}
