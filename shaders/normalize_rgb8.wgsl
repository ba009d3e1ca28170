// normalize_rgb8: ToTensor + Normalize(0.5, 0.5) of a batch of packed 8-bit RGB images into
// NCHW float pixel_values:  out[b, c, i] = lut[channel c of pixels[b, i]]
//   pixels u32 [B, HW] (R | G << 8 | B << 16), lut f32 [256] with lut[v] = (v / 255 - 0.5) / 0.5
//   as torch computes it in float32 (a table, because WGSL's f32 division need not be correctly
//   rounded), out f32 [B, 3, HW].
struct Params { B: u32, HW: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pixels: array<u32>;
@group(0) @binding(2) var<storage, read> lut: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (idx >= p.B * 3u * p.HW) { return; }
  let i = idx % p.HW;
  let c = (idx / p.HW) % 3u;
  let b = idx / (3u * p.HW);
  out[idx] = lut[(pixels[b * p.HW + i] >> (8u * c)) & 255u];
}
