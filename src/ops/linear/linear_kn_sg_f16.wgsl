// linear_kn_sg_f16: y = act(x @ w^T + bias) + residual with the weight stored as halves
//                                                     (torch.nn.Linear, then optional GELU / residual)
//   x        [M, K]           activations (f32), read as [M, K/4] vec4 (K a multiple of 4)
//   wh       [K, Np/8] vec4u  the weight transposed, 8 columns per vec4u as half pairs, zero-padded to
//                             Np = ceil(N/8)*8 columns (linear_pack_f16 makes it once per weight)
//   bias     [N]              used when hasBias = 1 (else any buffer)
//   residual [M, N]           added after the activation when hasResidual = 1 (else any buffer)
//   y        [M, N]
// Flags (uniforms, so one pipeline serves every combination): hasBias, hasResidual, act (0 = none, 1 = GELU tanh approximation);
// ROWS ({{ROWS}}) rows per workgroup, WORKGROUP ({{WORKGROUP}}) invocations per workgroup
// (placeholders: accumulator array size, workgroup size).
// linear_kn_sg with f16 weights: each invocation owns 8 consecutive columns, so one 4-component
// load brings 8 weights (half the load instructions per weight on CPU drivers, half the bytes);
// products and sums in f32. Accuracy: the weight's f16 rounding (relative 2^-11 per weight), about
// 1e-3 of the output's size; this variant is held to 2e-3 rel_to_max, never to the f32 bound.
enable subgroups;

struct Params { M: u32, N: u32, K4: u32, Np8: u32, groupsN: u32, hasBias: u32, hasResidual: u32, act: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> wh: array<vec4u>;
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

/** Columns 0..3 and 4..7 of a packed row. */
fn lo(h: vec4u) -> vec4f { return vec4f(unpack2x16float(h.x), unpack2x16float(h.y)); }
fn hi(h: vec4u) -> vec4f { return vec4f(unpack2x16float(h.z), unpack2x16float(h.w)); }

@compute @workgroup_size({{WORKGROUP}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sgSize: u32) {
  let group = wid.x + wid.y * nwg.x;
  let m0 = (group / p.groupsN) * ROWS;
  if (m0 >= p.M) { return; } // uniform across the workgroup
  let n8 = (group % p.groupsN) * {{WORKGROUP}}u + lid;
  let nc = min(n8, p.Np8 - 1u);
  var xr: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { xr[r] = min(m0 + r, p.M - 1u) * p.K4; }
  var accLo: array<vec4f, ROWS>; // y[m0 + r, 8 n8 .. 8 n8 + 3]
  var accHi: array<vec4f, ROWS>; // y[m0 + r, 8 n8 + 4 .. 8 n8 + 7]
  for (var kc = 0u; kc < p.K4; kc += sgSize) {
    let kl = min(kc + lane, p.K4 - 1u);
    var xv: array<vec4f, ROWS>;
    for (var r = 0u; r < ROWS; r++) { xv[r] = x[xr[r] + kl]; }
    let steps = min(sgSize, p.K4 - kc);
    for (var j = 0u; j < steps; j++) {
      let wb = 4u * (kc + j) * p.Np8 + nc;
      let h0 = wh[wb];
      let h1 = wh[wb + p.Np8];
      let h2 = wh[wb + 2u * p.Np8];
      let h3 = wh[wb + 3u * p.Np8];
      let l0 = lo(h0); let l1 = lo(h1); let l2 = lo(h2); let l3 = lo(h3);
      let u0 = hi(h0); let u1 = hi(h1); let u2 = hi(h2); let u3 = hi(h3);
      for (var r = 0u; r < ROWS; r++) {
        let a = subgroupShuffle(xv[r], j);
        accLo[r] = fma(vec4f(a.x), l0, fma(vec4f(a.y), l1, fma(vec4f(a.z), l2, fma(vec4f(a.w), l3, accLo[r]))));
        accHi[r] = fma(vec4f(a.x), u0, fma(vec4f(a.y), u1, fma(vec4f(a.z), u2, fma(vec4f(a.w), u3, accHi[r]))));
      }
    }
  }
  let N = p.N;
  for (var r = 0u; r < ROWS; r++) {
    let m = m0 + r;
    if (m >= p.M) { break; }
    for (var c = 0u; c < 8u; c++) {
      let n = 8u * n8 + c;
      if (n >= N) { break; }
      var v = select(accHi[r][c & 3u], accLo[r][c & 3u], c < 4u);
      if (p.hasBias == 1u) { v += bias[n]; }
      if (p.act == 1u) { v = gelu_tanh(v); }
      if (p.hasResidual == 1u) { v += residual[m * N + n]; }
      y[m * N + n] = v;
    }
  }
}
