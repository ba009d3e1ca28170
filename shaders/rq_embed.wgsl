// rq_embed: z_q = sum_d w[codes[d]]        (RQBottleneck.embed_code with a shared codebook, summed over depth)
//   codes [T, D] i32, w [rows, E] codebook weight (rows = n_embed + 1, the last one the padding
//   row, which nn.Embedding returns for code n_embed), z_q [T, E].
// A kernel cannot fail: codes outside 0..rows-1 are clamped into that range (callers validate
// codes on the host). Depths are summed in order, in f32.
struct Params { T: u32, D: u32, E: u32, rows: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> codes: array<i32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> z_q: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= p.T * p.E) { return; }
  let e = i % p.E;
  let t = i / p.E;
  var s = 0.0;
  for (var d = 0u; d < p.D; d++) {
    let c = u32(clamp(codes[t * p.D + d], 0, i32(p.rows) - 1));
    s += w[c * p.E + e];
  }
  z_q[i] = s;
}
