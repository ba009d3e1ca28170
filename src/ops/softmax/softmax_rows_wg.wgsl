// softmax_rows_wg: a[r, :] = softmax(scale * s[r, :]) over each row of N scores
//                                        (AttnBlock: torch.nn.functional.softmax(w_, dim=2))
//   s [rows, N] at s_off, a [rows, N] at a_off (rows = B*N query positions); scale > 0 (1 when
//   the scores come scaled)
// Variant 'wg' (softmax's GPU one; 'rows', spatial_attention_softmax.wgsl, is the general one):
// one workgroup per row, so that the 576 rows of a batch-1 decoder attention fill a GPU instead of
// 9 workgroups. Its WG invocations stride over the row (invocation l takes j = l, l + WG, ...;
// coalesced loads); the row's max, then the sum of exp(scale (s - max)), are each merged by a
// tree reduction in workgroup memory (no subgroup features: it runs on every adapter); every
// invocation then writes its normalised values.
struct Params { rows: u32, N: u32, s_off: u32, a_off: u32, scale: f32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;

const WG: u32 = 256u;

var<workgroup> red: array<f32, WG>;

// The max (is_max) or sum of every invocation's `v`, returned to all of them (red is free again on return).
fn workgroup_reduce(lid: u32, v: f32, is_max: bool) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { red[lid] = select(red[lid] + red[lid + stride], max(red[lid], red[lid + stride]), is_max); }
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
  let sb = p.s_off + row * p.N;
  let ab = p.a_off + row * p.N;
  var mx = -3.0e38; // invocations past the row's end hold this, which never wins the max
  for (var j = lid; j < p.N; j += WG) { mx = max(mx, s[sb + j]); }
  mx = workgroup_reduce(lid, mx, true);
  var sum = 0.0;
  for (var j = lid; j < p.N; j += WG) { sum += exp((s[sb + j] - mx) * p.scale); }
  let inv = 1.0 / workgroup_reduce(lid, sum, false);
  for (var j = lid; j < p.N; j += WG) { a[ab + j] = exp((s[sb + j] - mx) * p.scale) * inv; }
}
