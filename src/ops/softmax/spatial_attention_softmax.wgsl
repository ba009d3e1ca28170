// spatial_attention_softmax: a[r, :] = softmax(scale * s[r, :]) over each row of N scores
//                                        (AttnBlock: torch.nn.functional.softmax(w_, dim=2))
//   s [rows, N] at s_off, a [rows, N] at a_off (rows = B*N query positions); scale > 0 (1 when
//   the scores come scaled)
// Variant 'rows' (softmax's general one, the CPU drivers'): one invocation per row: max, then the
// sum of exp(scale (s - max)), then the normalised values. 'wg' (softmax_rows_wg): one workgroup per row.
struct Params { rows: u32, N: u32, s_off: u32, a_off: u32, scale: f32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (row >= p.rows) { return; }
  let sb = p.s_off + row * p.N;
  let ab = p.a_off + row * p.N;
  var mx = -3.0e38;
  for (var j = 0u; j < p.N; j++) { mx = max(mx, s[sb + j]); }
  var sum = 0.0;
  for (var j = 0u; j < p.N; j++) { sum += exp((s[sb + j] - mx) * p.scale); }
  let inv = 1.0 / sum;
  for (var j = 0u; j < p.N; j++) { a[ab + j] = exp((s[sb + j] - mx) * p.scale) * inv; }
}
