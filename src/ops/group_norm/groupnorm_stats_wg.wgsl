// groupnorm_stats_wg: per-chunk statistics of each GroupNorm group, one workgroup per chunk
//                                        (first pass of torch.nn.GroupNorm; the GPU-shaped variant)
//   x        [B, C, H, W] NCHW at x_off, read as vec4 (x_off and S multiples of 4): group g of
//            batch item b is the contiguous run of S = (C/G)*H*W values at x_off + (b*G + g)*S
//   partials [B*G, chunks, 2] at part_off: for chunk k of a group (values k*4096 .. min(S, (k+1)*4096)),
//            its mean and M2 = sum of squared deviations from that mean
// One workgroup of WG = 256 invocations per (b, g, chunk); chunks of 4096 values give every group
// several workgroups (36 at 512 channels @ 96x96, 144 at 128 channels @ 384x384), so batch 1
// fills a large GPU where one workgroup per group would be 32. Invocation l reads the vec4s
// l, l + WG, l + 2 WG, l + 3 WG of its chunk (each load of the workgroup one contiguous 4 KiB),
// keeps its up to 16 values in registers and takes their mean and M2 in two passes over them;
// a tree in workgroup memory merges the WG (n, mean, M2) with Chan's pairwise update, so no
// variance is ever formed as E[x^2] - E[x]^2. groupnorm_stats_combine_wg merges the chunks.
// Invocations past the end of the last chunk hold n = 0, which the merge skips.
struct Params { BG: u32, S: u32, chunks: u32, x_off: u32, part_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

const WG: u32 = 256u;
const PER: u32 = 4u; // vec4s per invocation: a chunk is WG * PER * 4 = 4096 values (GN_WG_CHUNK in group_norm.ts)

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

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = wid.x + wid.y * nwg.x; // (b*G + g) * chunks + k
  if (idx >= p.BG * p.chunks) { return; } // uniform across the workgroup
  let seg = idx / p.chunks;
  let first = (idx % p.chunks) * (WG * PER * 4u);
  let n4 = min(WG * PER, (p.S - first) / 4u); // vec4s in this chunk
  let base = (p.x_off + seg * p.S + first) / 4u;
  var v: array<vec4f, PER>;
  var cnt = 0u; // v[0 .. cnt) hold this invocation's values
  var s = vec4f(0.0);
  for (var i = 0u; i < PER; i++) {
    let j = lid + i * WG;
    if (j < n4) {
      v[i] = x[base + j];
      s += v[i];
      cnt++;
    }
  }
  var m = Moments(0.0, 0.0, 0.0);
  if (cnt > 0u) {
    m.n = f32(cnt * 4u);
    m.mean = ((s.x + s.y) + (s.z + s.w)) / m.n;
    for (var i = 0u; i < cnt; i++) {
      let d = v[i] - m.mean;
      m.m2 += dot(d, d);
    }
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
    partials[p.part_off + idx * 2u] = m.mean;
    partials[p.part_off + idx * 2u + 1u] = m.m2;
  }
}
