// groupnorm_stats: per-chunk statistics of each GroupNorm group (first pass of torch.nn.GroupNorm)
//   x        [B, C, H, W] NCHW at x_off: group g of batch item b is the contiguous run of
//            S = (C/G)*H*W values starting at x_off + (b*G + g)*S
//   partials [B*G, chunks, 2] at part_off: for chunk k of a group (values k*chunk .. min(S, (k+1)*chunk)),
//            its mean and M2 = sum of squared deviations from that mean (two passes over the chunk)
// One invocation per (b, g, chunk); groupnorm_stats_combine merges the chunks of a group.
struct Params { B: u32, G: u32, S: u32, chunk: u32, chunks: u32, x_off: u32, part_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (idx >= p.B * p.G * p.chunks) { return; }
  let seg = idx / p.chunks;
  let first = (idx % p.chunks) * p.chunk;
  let n = min(p.chunk, p.S - first);
  let base = p.x_off + seg * p.S + first;
  var sum = 0.0;
  for (var i = 0u; i < n; i++) { sum += x[base + i]; }
  let mean = sum / f32(n);
  var m2 = 0.0;
  for (var i = 0u; i < n; i++) { let d = x[base + i] - mean; m2 += d * d; }
  partials[p.part_off + idx * 2u] = mean;
  partials[p.part_off + idx * 2u + 1u] = m2;
}
