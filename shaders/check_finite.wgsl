// check_finite: counts the non-finite values of x, NaNs and infinities apart, and finds the
// first one:  status[4 * slot + 0] += NaNs, [4 * slot + 1] += +-Infs,
//             [4 * slot + 2] = min([4 * slot + 2], index of the first non-finite value).
//   x [n] f32, read as its bits (exponent all ones; WGSL lets compilers assume that floats are
//   finite, so `v != v` may be folded away); status u32 [4 * slots], which the caller sets to
//   (0, 0, 0xffffffff, 0) per slot before the first check. One dispatch per checked tensor, any
//   grid (each invocation strides over x by the whole grid's size; folded into x, y as usual).
//   No variants.
struct Params { n: u32, slot: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> status: array<atomic<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let stride = nwg.x * nwg.y * 256u;
  var nans = 0u;
  var infs = 0u;
  var first = 0xffffffffu;
  for (var i = (wid.x + wid.y * nwg.x) * 256u + lid; i < p.n; i += stride) {
    let bits = x[i];
    if ((bits & 0x7f800000u) == 0x7f800000u) {
      if ((bits & 0x007fffffu) != 0u) { nans += 1u; } else { infs += 1u; }
      first = min(first, i);
    }
  }
  if (nans + infs > 0u) {
    atomicAdd(&status[4u * p.slot], nans);
    atomicAdd(&status[4u * p.slot + 1u], infs);
    atomicMin(&status[4u * p.slot + 2u], first);
  }
}
