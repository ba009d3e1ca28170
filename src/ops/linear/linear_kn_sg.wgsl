// linear_kn_sg: y = act(x @ w^T + bias) + residual     (torch.nn.Linear, then optional GELU / residual)
//   x        [M, K]   activations, read as [M, K/4] vec4 (K a multiple of 4)
//   wt       [K, Np]  the weight transposed and zero-padded to Np = ceil(N/4)*4 columns, read as
//                     [K, Np/4] vec4 (linear_pack makes it once per weight)
//   bias     [N]      used when hasBias = 1 ([M] when hasBias = 2; else any buffer)
//   residual [M, N]   added after the activation when hasResidual = 1 (else any buffer)
//   y        [M, N]
// Batched (the Winograd convolution's GEMMs in one dispatch; a 1x1 conv over a batch of NCHW
// images): batch b reads x at xOff4 + b * xBatch4 vec4s, wt at wOff4 + b * wBatch4 vec4s, the
// residual at rOff + b * yBatch and writes y at yOff + b * yBatch (the bias is not batched);
// batchGroups workgroups per batch item. A plain linear has batches = 1 and no offsets.
// Flags (uniforms, so one pipeline serves every combination): hasBias (1: per column, 2: per row), hasResidual, act (0 =
// none, 1 = GELU tanh approximation);
// ROWS ({{ROWS}}, a placeholder: the accumulator array size) rows per workgroup; WORKGROUP
// ({{WORKGROUP}}, a placeholder) invocations per workgroup, 4 columns each.
// For CPU drivers (lavapipe), where every storage load inside a loop is done lane by lane: a
// workgroup owns ROWS rows of y and each invocation 4 consecutive columns of them, so one vec4
// load of wt feeds 4 * ROWS multiply-adds. The rows' activations are not loaded by every lane:
// per chunk of subgroup_size vec4s along K, lane l loads vec4 l of each row and the lanes read
// each other's with subgroupShuffle (a register permute on SIMD CPU drivers). No shared memory,
// no barriers. Every invocation stays active through the loop (edge rows and columns are clamped
// and never stored), as the shuffles need. Works for any subgroup size; accumulation in f32.
enable subgroups;

struct Params {
  M: u32, N: u32, K4: u32, Np4: u32, groupsN: u32,
  batches: u32, batchGroups: u32, xBatch4: u32, wBatch4: u32, yBatch: u32,
  xOff4: u32, wOff4: u32, yOff: u32, rOff: u32,
  hasBias: u32, hasResidual: u32, act: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> wt: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

const ROWS: u32 = {{ROWS}}u;

fn gelu_tanh(v: vec4f) -> vec4f {
  // 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))), with tanh's argument clamped so exp() cannot overflow.
  let u = clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), vec4f(-15.0), vec4f(15.0));
  let e = exp(2.0 * u);
  return 0.5 * v * (1.0 + (e - 1.0) / (e + 1.0));
}

@compute @workgroup_size({{WORKGROUP}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sgSize: u32) {
  let g = wid.x + wid.y * nwg.x;
  let batch = g / p.batchGroups;
  let group = g % p.batchGroups;
  let m0 = (group / p.groupsN) * ROWS;
  if (m0 >= p.M || batch >= p.batches) { return; } // uniform across the workgroup
  let xb = p.xOff4 + batch * p.xBatch4;
  let yb = batch * p.yBatch;
  let n4 = (group % p.groupsN) * {{WORKGROUP}}u + lid;
  let nc = p.wOff4 + batch * p.wBatch4 + min(n4, p.Np4 - 1u); // this invocation's column of wt
  var xr: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { xr[r] = xb + min(m0 + r, p.M - 1u) * p.K4; }
  var acc: array<vec4f, ROWS>; // acc[r] = y[m0 + r, 4 n4 .. 4 n4 + 3]
  for (var kc = 0u; kc < p.K4; kc += sgSize) {
    // Lane l holds x[row, 4 (kc + l) .. + 3] of each row; lanes past K repeat the last vec4, unread.
    let kl = min(kc + lane, p.K4 - 1u);
    var xv: array<vec4f, ROWS>;
    for (var r = 0u; r < ROWS; r++) { xv[r] = x[xr[r] + kl]; }
    let steps = min(sgSize, p.K4 - kc);
    for (var j = 0u; j < steps; j++) {
      let wb = 4u * (kc + j) * p.Np4 + nc;
      let w0 = wt[wb];
      let w1 = wt[wb + p.Np4];
      let w2 = wt[wb + 2u * p.Np4];
      let w3 = wt[wb + 3u * p.Np4];
      for (var r = 0u; r < ROWS; r++) {
        let a = subgroupShuffle(xv[r], j);
        acc[r] = fma(vec4f(a.x), w0, fma(vec4f(a.y), w1, fma(vec4f(a.z), w2, fma(vec4f(a.w), w3, acc[r]))));
      }
    }
  }
  // The epilogue, one flag test per step (not per output: on CPU drivers every branch costs
  // compile time in the unrolled row loops). Edge rows and columns are computed clamped, not stored.
  let N = p.N;
  let n0 = 4u * n4;
  if (p.hasBias == 1u) {
    var colBias = vec4f(0.0);
    for (var c = 0u; c < 4u; c++) { colBias[c] = bias[min(n0 + c, N - 1u)]; }
    for (var r = 0u; r < ROWS; r++) { acc[r] += colBias; }
  }
  if (p.hasBias == 2u) {
    for (var r = 0u; r < ROWS; r++) { acc[r] += vec4f(bias[min(m0 + r, p.M - 1u)]); }
  }
  if (p.act == 1u) {
    for (var r = 0u; r < ROWS; r++) { acc[r] = gelu_tanh(acc[r]); }
  }
  if (p.hasResidual == 1u) {
    for (var r = 0u; r < ROWS; r++) {
      let rowAt = p.rOff + yb + min(m0 + r, p.M - 1u) * N;
      for (var c = 0u; c < 4u; c++) { acc[r][c] += residual[rowAt + min(n0 + c, N - 1u)]; }
    }
  }
  let cols = select(0u, min(4u, N - n0), n0 < N);
  for (var r = 0u; r < ROWS; r++) {
    let m = m0 + r;
    if (m >= p.M) { break; }
    for (var c = 0u; c < cols; c++) { y[p.yOff + yb + m * N + n0 + c] = acc[r][c]; }
  }
}
