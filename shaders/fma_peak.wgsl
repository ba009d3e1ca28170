// fma_peak: the adapter's arithmetic ceiling: multiply-adds on registers only, no memory traffic
//   out [invocations] one value per invocation (keeps the compiler from dropping the work)
// Each invocation runs ITERS rounds of ACC independent vec4 multiply-add chains ({{ACC}}, a
// placeholder: the accumulator array size), i.e. 8 * ACC * ITERS FLOPs, then stores their sum.
// Independent chains hide the multiply-add latency; the benchmark takes the best ACC.
struct Params { iters: u32, a: f32, b: f32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

const ACC: u32 = {{ACC}}u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  var acc: array<vec4f, ACC>;
  for (var i = 0u; i < ACC; i++) { acc[i] = vec4f(f32(idx), f32(i), 1.0, 2.0) * 1e-3; }
  let a = vec4f(p.a);
  let b = vec4f(p.b);
  for (var t = 0u; t < p.iters; t++) {
    for (var i = 0u; i < ACC; i++) { acc[i] = fma(acc[i], a, b); }
  }
  var s = vec4f(0.0);
  for (var i = 0u; i < ACC; i++) { s += acc[i]; }
  out[idx] = s.x + s.y + s.z + s.w;
}
