// linear_kn: y = act(x @ w^T + bias) + residual        (torch.nn.Linear, then optional GELU / residual)
//   x        [M, K]   activations, read as [M, K/4] vec4 (K a multiple of 4)
//   wt       [K, Np]  the weight transposed and zero-padded to Np = ceil(N/4)*4 columns, read as
//                     [K, Np/4] vec4 (linear_pack makes it once per weight)
//   bias     [N]      used when hasBias = 1 (else any buffer)
//   residual [M, N]   added after the activation when hasResidual = 1 (else any buffer)
//   y        [M, N]
// Flags (uniforms, so one pipeline serves every combination): hasBias, hasResidual, act (0 = none, 1 = GELU tanh approximation);
// ROWS ({{ROWS}}, a placeholder: the accumulator array size) rows per workgroup.
// linear_kn_sg without subgroups: a workgroup owns ROWS rows of y and each invocation 4
// consecutive columns, so one vec4 load of wt feeds 4 * ROWS multiply-adds; every invocation
// loads the rows' activations itself (the same addresses across the workgroup). No shared memory.
struct Params { M: u32, N: u32, K4: u32, Np4: u32, groupsN: u32, hasBias: u32, hasResidual: u32, act: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> wt: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

const ROWS: u32 = {{ROWS}}u;

fn gelu_tanh(v: f32) -> f32 {
  // 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))), with tanh's argument clamped so exp() cannot overflow.
  let u = clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -15.0, 15.0);
  let e = exp(2.0 * u);
  return 0.5 * v * (1.0 + (e - 1.0) / (e + 1.0));
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let group = wid.x + wid.y * nwg.x;
  let m0 = (group / p.groupsN) * ROWS;
  if (m0 >= p.M) { return; }
  let n4 = (group % p.groupsN) * 64u + lid;
  if (n4 >= p.Np4) { return; }
  var xr: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { xr[r] = min(m0 + r, p.M - 1u) * p.K4; }
  var acc: array<vec4f, ROWS>; // acc[r] = y[m0 + r, 4 n4 .. 4 n4 + 3]
  for (var k4 = 0u; k4 < p.K4; k4++) {
    let wb = 4u * k4 * p.Np4 + n4;
    let w0 = wt[wb];
    let w1 = wt[wb + p.Np4];
    let w2 = wt[wb + 2u * p.Np4];
    let w3 = wt[wb + 3u * p.Np4];
    for (var r = 0u; r < ROWS; r++) {
      let a = x[xr[r] + k4];
      acc[r] = fma(vec4f(a.x), w0, fma(vec4f(a.y), w1, fma(vec4f(a.z), w2, fma(vec4f(a.w), w3, acc[r]))));
    }
  }
  let N = p.N;
  for (var r = 0u; r < ROWS; r++) {
    let m = m0 + r;
    if (m >= p.M) { break; }
    for (var c = 0u; c < 4u; c++) {
      let n = 4u * n4 + c;
      if (n >= N) { break; }
      var v = acc[r][c];
      if (p.hasBias == 1u) { v += bias[n]; }
      if (p.act == 1u) { v = gelu_tanh(v); }
      if (p.hasResidual == 1u) { v += residual[m * N + n]; }
      y[m * N + n] = v;
    }
  }
}
