// linear_rows: y = act(x @ w^T + bias) + residual     (torch.nn.Linear, then optional GELU / residual)
//   x        [M, K]   activations
//   w        [N, K]   PyTorch Linear weight layout (out_features, in_features)
//   bias     [N]      used when hasBias = 1 (else any buffer)
//   residual [M, N]   added after the activation when hasResidual = 1 (else any buffer)
//   y        [M, N]
// Flags (uniforms, so one pipeline serves every combination): hasBias, hasResidual, act (0 = none, 1 = GELU tanh approximation);
// ROWS ({{ROWS}}, a placeholder: the accumulator array size) rows per workgroup.
// A workgroup owns ROWS consecutive rows of y and each invocation 4 columns of them: the row
// index depends on the workgroup only, so on SIMD CPU drivers every x load is one scalar load
// shared by all lanes, and each weight load feeds ROWS multiply-adds. No shared memory.
struct Params { M: u32, N: u32, K: u32, groupsN: u32, hasBias: u32, hasResidual: u32, act: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

const ROWS: u32 = {{ROWS}}u;

fn gelu_tanh(v: f32) -> f32 {
  let u = clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -15.0, 15.0);
  let e = exp(2.0 * u);
  return 0.5 * v * (1.0 + (e - 1.0) / (e + 1.0));
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let group = wid.x + wid.y * nwg.x;
  let m0 = (group / p.groupsN) * ROWS;
  if (m0 >= p.M) { return; }
  let n0 = ((group % p.groupsN) * 64u + lid) * 4u;
  // Columns past the edge read the last row of w and are never stored.
  var wr: array<u32, 4>;
  for (var j = 0u; j < 4u; j++) { wr[j] = min(n0 + j, p.N - 1u) * p.K; }
  var acc: array<vec4f, ROWS>;
  let K4 = p.K & ~3u;
  var k = 0u;
  for (; k < K4; k += 4u) {
    let b0 = vec4f(w[wr[0] + k], w[wr[0] + k + 1u], w[wr[0] + k + 2u], w[wr[0] + k + 3u]);
    let b1 = vec4f(w[wr[1] + k], w[wr[1] + k + 1u], w[wr[1] + k + 2u], w[wr[1] + k + 3u]);
    let b2 = vec4f(w[wr[2] + k], w[wr[2] + k + 1u], w[wr[2] + k + 2u], w[wr[2] + k + 3u]);
    let b3 = vec4f(w[wr[3] + k], w[wr[3] + k + 1u], w[wr[3] + k + 2u], w[wr[3] + k + 3u]);
    for (var r = 0u; r < ROWS; r++) {
      let xb = min(m0 + r, p.M - 1u) * p.K + k;
      let a = vec4f(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u]);
      acc[r] += vec4f(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
    }
  }
  for (; k < p.K; k++) {
    let b = vec4f(w[wr[0] + k], w[wr[1] + k], w[wr[2] + k], w[wr[3] + k]);
    for (var r = 0u; r < ROWS; r++) { acc[r] += x[min(m0 + r, p.M - 1u) * p.K + k] * b; }
  }
  for (var r = 0u; r < ROWS; r++) {
    let m = m0 + r;
    if (m >= p.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + j;
      if (n >= p.N) { break; }
      var v = acc[r][j];
      if (p.hasBias == 1u) { v += bias[n]; }
      if (p.act == 1u) { v = gelu_tanh(v); }
      if (p.hasResidual == 1u) { v += residual[m * p.N + n]; }
      y[m * p.N + n] = v;
    }
  }
}
