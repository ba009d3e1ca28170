// linear_wg_tiled: y = act(x @ w^T + bias) + residual     (torch.nn.Linear, then optional GELU / residual)
//   x        [M, K]   activations
//   w        [N, K]   the PyTorch weight as stored (no packed copy)
//   bias     [N]      used when hasBias = 1 (else any buffer)
//   residual [M, N]   added after the activation when hasResidual = 1 (else any buffer)
//   y        [M, N]
// Flags (uniforms, so one pipeline serves every combination): hasBias, hasResidual, act (0 = none, 1 = GELU tanh approximation).
// Placeholders: the arithmetic type T ({{T}}, with ENABLE, {{ENABLE}}, and STEP_SUMS, {{STEP_SUMS}}):
// f32 (variant wg_tiled, STEP_SUMS = 0) or f16 (wg_tiled_f16, `enable f16;`, STEP_SUMS = 1, for GPUs
// with double-rate half arithmetic); TILE ({{TILE}}: array and workgroup sizes) 64 or 128.
// The GPU-shaped variant (any M, N, K): a WGS x WGS workgroup (WGS = TILE / 8) owns a TILE x TILE
// tile of y, each invocation 8 x 8 outputs: rows ty + WGS i, columns tx + WGS j (i, j < 8), so per
// reduction step it reads 8 + 8 values of workgroup memory for 64 multiply-adds; the WGS
// invocations of a row of the workgroup read consecutive values of the w slice (no bank
// conflicts) and one of the x slice (a broadcast). K is walked in steps of 8, each staging the
// TILE x 8 slices of x and w, converted to T, with loads where consecutive invocations read
// consecutive k. Elements past M, N or K are staged as zeros. The sums run in T; with
// STEP_SUMS = 1 each step's 8-term sums are added to f32 accumulators, so that with T = f16 rounding grows with 8 terms, not with K:
// inputs, weights, products and 8-term sums in f16, about 1e-3 of the output's size (held to
// 3e-3); |x|, |w| and the partial sums must stay within f16's range (65504). The weight stays
// f32 in memory.
{{ENABLE}}
struct Params { M: u32, N: u32, K: u32, tilesN: u32, hasBias: u32, hasResidual: u32, act: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;


const TILE: u32 = {{TILE}}u;
const WGS: u32 = TILE / 8u; // invocations per workgroup side
const BK: u32 = 8u;
const STEP_SUMS: u32 = {{STEP_SUMS}}u;

var<workgroup> xs: array<{{T}}, BK * TILE>; // [BK][TILE]: xs[kk * TILE + r] = x[m0 + r, k0 + kk]
var<workgroup> ws: array<{{T}}, BK * TILE>; // [BK][TILE]: ws[kk * TILE + c] = w[n0 + c, k0 + kk]

fn gelu_tanh(v: f32) -> f32 {
  // 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))), with tanh's argument clamped so exp() cannot overflow.
  let u = clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -15.0, 15.0);
  let e = exp(2.0 * u);
  return 0.5 * v * (1.0 + (e - 1.0) / (e + 1.0));
}

@compute @workgroup_size(WGS, WGS)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let group = wid.x + wid.y * nwg.x;
  let m0 = (group / p.tilesN) * TILE;
  let n0 = (group % p.tilesN) * TILE;
  if (m0 >= p.M) { return; } // uniform across the workgroup
  let tx = lid.x;
  let ty = lid.y;
  // sums[2 i + h][c] = y[m0 + ty + WGS i, n0 + tx + WGS (4 h + c)]: in T, and in f32 (acc) with STEP_SUMS.
  var sums = array<vec4<{{T}}>, 16>();
  var acc = array<vec4f, 16>();
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    for (var q = 0u; q < BK * TILE / (WGS * WGS); q++) {
      let e = li + WGS * WGS * q;
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
    for (var kk = 0u; kk < BK; kk++) {
      let wb = kk * TILE + tx;
      let b0 = vec4<{{T}}>(ws[wb], ws[wb + WGS], ws[wb + 2u * WGS], ws[wb + 3u * WGS]);
      let b1 = vec4<{{T}}>(ws[wb + 4u * WGS], ws[wb + 5u * WGS], ws[wb + 6u * WGS], ws[wb + 7u * WGS]);
      for (var i = 0u; i < 8u; i++) {
        let a = vec4<{{T}}>(xs[kk * TILE + ty + WGS * i]);
        sums[2u * i] = fma(a, b0, sums[2u * i]);
        sums[2u * i + 1u] = fma(a, b1, sums[2u * i + 1u]);
      }
    }
    if (STEP_SUMS == 1u) {
      for (var i = 0u; i < 16u; i++) {
        acc[i] += vec4f(sums[i]);
        sums[i] = vec4<{{T}}>();
      }
    }
    workgroupBarrier();
  }
  let N = p.N;
  for (var i = 0u; i < 8u; i++) {
    let m = m0 + ty + WGS * i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < 8u; j++) {
      let n = n0 + tx + WGS * j;
      if (n >= N) { break; }
      var v = acc[2u * i + j / 4u][j % 4u] + f32(sums[2u * i + j / 4u][j % 4u]);
      if (p.hasBias == 1u) { v += bias[n]; }
      if (p.act == 1u) { v = gelu_tanh(v); }
      if (p.hasResidual == 1u) { v += residual[m * N + n]; }
      y[m * N + n] = v;
    }
  }
}
