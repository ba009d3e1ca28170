// groupnorm_stats_combine_wg: mean and 1/sqrt(var + eps) of each GroupNorm group from its chunk
// statistics (second pass of torch.nn.GroupNorm; var is the biased variance, as PyTorch's)
//   partials [B*G, chunks, 2] at part_off: (mean, M2) per chunk of `chunk` values (the last one
//            shorter), from groupnorm_stats_wg
//   stats    [B*G, 2] at stats_off: (mean, rstd) per group
// The GPU-shaped variant: one workgroup of WG = 64 invocations per (b, g). Invocation l merges
// chunks l, l + WG, ... in order (at the 384 decoder's sizes 1 to 3 of them), then a tree in
// workgroup memory merges the WG results; every merge is Chan's pairwise update, so the variance
// is always formed from centred sums. Invocations without a chunk hold n = 0, which the merge skips.
struct Params { BG: u32, S: u32, chunk: u32, chunks: u32, eps: f32, part_off: u32, stats_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;

const WG: u32 = 64u;

struct Moments { n: f32, mean: f32, m2: f32, }

var<workgroup> tree: array<Moments, WG>;

// Chan, Golub & LeVeque's pairwise update: d = mean_b - mean_a, M2 = M2_a + M2_b + d^2 n_a n_b / n.
fn merge(a: Moments, b: Moments) -> Moments {
  let n = a.n + b.n;
  if (n == 0.0) { return a; }
  let d = b.mean - a.mean;
  let f = b.n / n;
  return Moments(n, a.mean + d * f, a.m2 + b.m2 + d * d * (a.n * f));
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let seg = wid.x + wid.y * nwg.x;
  if (seg >= p.BG) { return; } // uniform across the workgroup
  let base = p.part_off + seg * p.chunks * 2u;
  var m = Moments(0.0, 0.0, 0.0);
  for (var k = lid; k < p.chunks; k += WG) {
    m = merge(m, Moments(f32(min(p.chunk, p.S - k * p.chunk)), partials[base + k * 2u], partials[base + k * 2u + 1u]));
  }
  tree[lid] = m;
  for (var span = WG / 2u; span > 0u; span /= 2u) {
    workgroupBarrier();
    if (lid < span) {
      m = merge(m, tree[lid + span]);
      tree[lid] = m;
    }
  }
  if (lid == 0u) {
    stats[p.stats_off + seg * 2u] = m.mean;
    stats[p.stats_off + seg * 2u + 1u] = inverseSqrt(m.m2 / m.n + p.eps);
  }
}
