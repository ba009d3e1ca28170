// linear_wg_tiled: y = act(x @ w^T + bias) + residual     (torch.nn.Linear, then optional GELU / residual)
//   x        [M, K]   activations
//   w        [N, K]   the PyTorch weight as stored (no packed copy)
//   bias     [N]      used when HAS_BIAS = 1 (else any buffer)
//   residual [M, N]   added after the activation when HAS_RESIDUAL = 1 (else any buffer)
//   y        [M, N]
// Variants (override constants): HAS_BIAS, HAS_RESIDUAL, ACT (0 = none, 1 = GELU tanh approximation);
// the arithmetic type T ({{T}}, a placeholder with ENABLE, {{ENABLE}}): f32 (variant wg_tiled) or
// f16 (wg_tiled_f16, `enable f16;`, for GPUs with double-rate half arithmetic).
// The GPU-shaped variant (any M, N, K): a 16 x 16 workgroup owns a 64 x 64 tile of y; K is walked
// in steps of 16, each step staging the 64 x 16 slices of x and w, converted to T, in workgroup
// memory with coalesced loads (consecutive invocations read consecutive k), then each invocation
// sums the step's 16 products of its 4 x 4 outputs, rows ty + 16 i and columns tx + 16 j, in T
// (the 16 invocations of a row of the workgroup read 16 consecutive values of the w slice, no bank
// conflicts, and one of the x slice, a broadcast) and adds that partial sum to an f32
// accumulator, so that with T = f16 rounding grows with 16 terms, not with K. Elements past M, N
// or K are staged as zeros. With T = f16: inputs, weights, products and 16-term sums in f16,
// about 1e-3 of the output's size (held to 3e-3); |x|, |w| and the partial sums must stay within
// f16's range (65504). The weight stays f32 in memory.
{{ENABLE}}
struct Params { M: u32, N: u32, K: u32, tilesN: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

override HAS_BIAS: u32 = 0u;
override HAS_RESIDUAL: u32 = 0u;
override ACT: u32 = 0u;

const TILE: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> xs: array<{{T}}, 1024>; // [BK][TILE]: xs[kk * TILE + r] = x[m0 + r, k0 + kk]
var<workgroup> ws: array<{{T}}, 1024>; // [BK][TILE]: ws[kk * TILE + c] = w[n0 + c, k0 + kk]

fn gelu_tanh(v: f32) -> f32 {
  // 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))), with tanh's argument clamped so exp() cannot overflow.
  let u = clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -15.0, 15.0);
  let e = exp(2.0 * u);
  return 0.5 * v * (1.0 + (e - 1.0) / (e + 1.0));
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let group = wid.x + wid.y * nwg.x;
  let m0 = (group / p.tilesN) * TILE;
  let n0 = (group % p.tilesN) * TILE;
  if (m0 >= p.M) { return; } // uniform across the workgroup
  let tx = lid.x;
  let ty = lid.y;
  var acc: array<vec4f, 4>; // acc[i][j] = y[m0 + ty + 16 i, n0 + tx + 16 j]
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4f(0.0); }
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    for (var q = 0u; q < 4u; q++) {
      let e = li + 256u * q;
      let r = e / BK;
      let kk = e % BK;
      let k = k0 + kk;
      let m = m0 + r;
      let n = n0 + r;
      let kc = min(k, p.K - 1u);
      xs[kk * TILE + r] = {{T}}(select(0.0, x[min(m, p.M - 1u) * p.K + kc], m < p.M && k < p.K));
      ws[kk * TILE + r] = {{T}}(select(0.0, w[min(n, p.N - 1u) * p.K + kc], n < p.N && k < p.K));
    }
    workgroupBarrier();
    var part = array<vec4<{{T}}>, 4>(); // this step's 16-term sums
    for (var kk = 0u; kk < BK; kk++) {
      let a = vec4<{{T}}>(xs[kk * TILE + ty], xs[kk * TILE + ty + 16u], xs[kk * TILE + ty + 32u], xs[kk * TILE + ty + 48u]);
      let b = vec4<{{T}}>(ws[kk * TILE + tx], ws[kk * TILE + tx + 16u], ws[kk * TILE + tx + 32u], ws[kk * TILE + tx + 48u]);
      part[0] = fma(vec4<{{T}}>(a.x), b, part[0]);
      part[1] = fma(vec4<{{T}}>(a.y), b, part[1]);
      part[2] = fma(vec4<{{T}}>(a.z), b, part[2]);
      part[3] = fma(vec4<{{T}}>(a.w), b, part[3]);
    }
    for (var i = 0u; i < 4u; i++) { acc[i] += vec4f(part[i]); }
    workgroupBarrier();
  }
  let N = p.N;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + ty + 16u * i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + tx + 16u * j;
      if (n >= N) { continue; }
      var v = acc[i][j];
      if (HAS_BIAS == 1u) { v += bias[n]; }
      if (ACT == 1u) { v = gelu_tanh(v); }
      if (HAS_RESIDUAL == 1u) { v += residual[m * N + n]; }
      y[m * N + n] = v;
    }
  }
}
