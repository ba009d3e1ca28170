// groupnorm_stats_vec4: per-chunk statistics of each GroupNorm group, one pass over the data
//                                        (first pass of torch.nn.GroupNorm)
//   x        [B, C, H, W] NCHW at x_off, read as vec4 (x_off and S multiples of 4): group g of
//            batch item b is the contiguous run of S = (C/G)*H*W values at x_off + (b*G + g)*S
//   partials [B*G, chunks, 2] at part_off: for chunk k of a group (values k*chunk .. min(S, (k+1)*chunk)),
//            its mean and M2 = sum of squared deviations from that mean
// One invocation per (b, g, chunk). Sums are taken around the chunk's first value c
// (mean = c + sum(x - c)/n, M2 = sum((x - c)^2) - sum(x - c)^2/n): one read of the data, and no
// cancellation from an offset shared by the whole chunk. groupnorm_stats_combine merges the chunks.
struct Params { B: u32, G: u32, S: u32, chunk: u32, chunks: u32, x_off: u32, part_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (idx >= p.B * p.G * p.chunks) { return; }
  let seg = idx / p.chunks;
  let first = (idx % p.chunks) * p.chunk;
  let n = min(p.chunk, p.S - first); // a multiple of 4
  let base = (p.x_off + seg * p.S + first) / 4u;
  let c = x[base].x;
  var s1 = vec4f(0.0);
  var s2 = vec4f(0.0);
  for (var i = 0u; i < n / 4u; i++) {
    let d = x[base + i] - c;
    s1 += d;
    s2 = fma(d, d, s2);
  }
  let t1 = (s1.x + s1.y) + (s1.z + s1.w);
  let t2 = (s2.x + s2.y) + (s2.z + s2.w);
  let fn_ = f32(n);
  partials[p.part_off + idx * 2u] = c + t1 / fn_;
  partials[p.part_off + idx * 2u + 1u] = max(t2 - t1 * t1 / fn_, 0.0);
}
