// resize_bicubic: one pass of Pillow's antialiased resampling (Resample.c, ImagingResample-
// Horizontal_8bpc / ImagingResampleVertical_8bpc) on packed 8-bit RGB, in Pillow's fixed point,
// so the result is bit-exact:
//   out[x, y].c = clamp((2^21 + sum_k table.c_k * in_k.c) >> 22, 0, 255)        (per channel c)
// with the taps along x (horizontal) or along y (vertical, VERTICAL = true):
//   horizontal: in_k = src[srcOffset + y * srcW + first(x) + k]
//   vertical:   in_k = src[srcOffset + (first(y) + k) * srcW + x]
// Buffers:
//   src   u32 [rows, srcW], one pixel per u32: R | G << 8 | B << 16, read from element srcOffset
//         (horizontal: one band of source rows, packed on the host, so that images of any size
//         are read a binding at a time; vertical: the horizontal output [rows, S] of the image)
//   table i32, from element tableOffset: for each output column (horizontal) or row (vertical) o,
//         taps + 2 values: first input index, tap count n <= taps, then `taps` coefficients
//         (22 fractional bits; the n used ones sum to about 2^22). Built on the host.
//   dst   u32 [outH, outW], the same packing, written from element dstOffset (horizontal: the
//         band's first output row; vertical: the image's slot of the batch).
// A pass that Pillow skips (size unchanged) is run as one tap of 2^22: an exact copy (crop).
// Sums stay within i32: 255 * sum|c_k| < 2^31 for bicubic, as in Pillow's own int arithmetic.
struct Params { outW: u32, outH: u32, srcW: u32, srcOffset: u32, dstOffset: u32, tableOffset: u32, taps: u32, }

override VERTICAL: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<i32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;

fn unpack(px: u32) -> vec3i {
  return vec3i(i32(px & 255u), i32((px >> 8u) & 255u), i32((px >> 16u) & 255u));
}

fn pack(v: vec3i) -> u32 {
  let c = vec3u(clamp(v >> vec3u(22u), vec3i(0), vec3i(255)));
  return c.x | (c.y << 8u) | (c.z << 16u);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (idx >= p.outW * p.outH) { return; }
  let x = idx % p.outW;
  let y = idx / p.outW;
  let o = select(x, y, VERTICAL);
  let entry = p.tableOffset + o * (p.taps + 2u);
  let first = u32(table[entry]);
  let n = u32(table[entry + 1u]);
  // Pixel of tap 0 and the step between taps in src.
  let base = p.srcOffset + select(y * p.srcW + first, first * p.srcW + x, VERTICAL);
  let step = select(1u, p.srcW, VERTICAL);
  var acc = vec3i(1 << 21);
  for (var k = 0u; k < n; k++) {
    acc += unpack(src[base + k * step]) * table[entry + 2u + k];
  }
  dst[p.dstOffset + idx] = pack(acc);
}
