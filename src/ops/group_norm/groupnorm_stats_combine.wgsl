// groupnorm_stats_combine: mean and 1/sqrt(var + eps) of each GroupNorm group from its chunk
// statistics (second pass of torch.nn.GroupNorm; var is the biased variance, as PyTorch's)
//   partials [B*G, chunks, 2] at part_off: (mean, M2) per chunk, from groupnorm_stats
//   stats    [B*G, 2] at stats_off: (mean, rstd) per group
// One invocation per (b, g). Chunks are merged in order with Chan's pairwise update
// (n = n_a + n_b, mean += d n_b / n, M2 = M2_a + M2_b + d^2 n_a n_b / n with d = mean_b - mean_a),
// so the variance is always formed from centred sums, never as E[x^2] - E[x]^2.
struct Params { BG: u32, S: u32, chunk: u32, chunks: u32, eps: f32, part_off: u32, stats_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let seg = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (seg >= p.BG) { return; }
  let base = p.part_off + seg * p.chunks * 2u;
  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var k = 0u; k < p.chunks; k++) {
    let nb = f32(min(p.chunk, p.S - k * p.chunk));
    let d = partials[base + k * 2u] - mean;
    let total = n + nb;
    mean += d * (nb / total);
    m2 += partials[base + k * 2u + 1u] + d * d * (n * nb / total);
    n = total;
  }
  stats[p.stats_off + seg * 2u] = mean;
  stats[p.stats_off + seg * 2u + 1u] = inverseSqrt(m2 / n + p.eps);
}
