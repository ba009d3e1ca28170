// linear: y = act(x @ w^T + bias) + residual          (torch.nn.Linear, then optional GELU / residual)
//   x        [M, K]  row-major activations
//   w        [N, K]  PyTorch Linear weight layout (out_features, in_features)
//   bias     [N]     used when hasBias = 1 (else any buffer)
//   residual [M, N]  added after the activation when hasResidual = 1 (else any buffer)
//   y        [M, N]
// Flags (uniforms, so one pipeline serves every combination): hasBias, hasResidual, act (0 = none, 1 = GELU tanh approximation).
// Each invocation computes a 4x4 block of y in registers, with no shared memory (barriers are
// costly on CPU drivers); accumulation in f32. K, M and N need not be multiples of 4.
struct Params { M: u32, N: u32, K: u32, tilesN: u32, hasBias: u32, hasResidual: u32, act: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;


fn gelu_tanh(v: f32) -> f32 {
  // 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))), with tanh's argument clamped so exp() cannot overflow.
  let u = clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -15.0, 15.0);
  let e = exp(2.0 * u);
  return 0.5 * v * (1.0 + (e - 1.0) / (e + 1.0));
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tile = (wid.x + wid.y * nwg.x) * 64u + lid;
  let tilesM = (p.M + 3u) / 4u;
  if (tile >= tilesM * p.tilesN) { return; }
  let m0 = (tile / p.tilesN) * 4u;
  let n0 = (tile % p.tilesN) * 4u;
  // Rows/cols past the edge read a valid row (the last one) and are never stored.
  var xr: array<u32, 4>;
  var wr: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    xr[i] = min(m0 + i, p.M - 1u) * p.K;
    wr[i] = min(n0 + i, p.N - 1u) * p.K;
  }
  var acc: array<vec4f, 4>;
  let K4 = p.K & ~3u;
  var k = 0u;
  for (; k < K4; k += 4u) {
    let b0 = vec4f(w[wr[0] + k], w[wr[0] + k + 1u], w[wr[0] + k + 2u], w[wr[0] + k + 3u]);
    let b1 = vec4f(w[wr[1] + k], w[wr[1] + k + 1u], w[wr[1] + k + 2u], w[wr[1] + k + 3u]);
    let b2 = vec4f(w[wr[2] + k], w[wr[2] + k + 1u], w[wr[2] + k + 2u], w[wr[2] + k + 3u]);
    let b3 = vec4f(w[wr[3] + k], w[wr[3] + k + 1u], w[wr[3] + k + 2u], w[wr[3] + k + 3u]);
    for (var i = 0u; i < 4u; i++) {
      let a = vec4f(x[xr[i] + k], x[xr[i] + k + 1u], x[xr[i] + k + 2u], x[xr[i] + k + 3u]);
      acc[i] += vec4f(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
    }
  }
  for (; k < p.K; k++) {
    let b = vec4f(w[wr[0] + k], w[wr[1] + k], w[wr[2] + k], w[wr[3] + k]);
    for (var i = 0u; i < 4u; i++) { acc[i] += x[xr[i] + k] * b; }
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + j;
      if (n >= p.N) { break; }
      var v = acc[i][j];
      if (p.hasBias == 1u) { v += bias[n]; }
      if (p.act == 1u) { v = gelu_tanh(v); }
      if (p.hasResidual == 1u) { v += residual[m * p.N + n]; }
      y[m * p.N + n] = v;
    }
  }
}
