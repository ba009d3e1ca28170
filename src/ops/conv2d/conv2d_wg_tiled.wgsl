// conv2d_wg_tiled: y = conv2d(x, w, stride 1, padding (K-1)/2) + bias [+ residual]
//                                        (torch.nn.Conv2d with k x k kernel, then optional residual add)
//   x        [B, Cin, H, W]      NCHW; element (b, c, i, j) at x[x_off + ((b*Cin + c)*H + i)*W + j]
//   w        [Cout, Cin, K, K]   the PyTorch weight as stored, read as a [Cout, Cin*K*K] matrix
//   bias     [Cout]
//   residual [B, Cout, H, W]     added after the bias when hasResidual = 1 (else any buffer), at r_off
//   y        [B, Cout, H, W]     at y_off
//   x_off, r_off, y_off: element offset of batch item 0 inside the bound range.
// Variants (override constant): KSIZE (1 or 3; padding KSIZE/2). Flag (a uniform, so one pipeline serves both): hasResidual. Placeholders: the
// arithmetic type T ({{T}}, with ENABLE, {{ENABLE}}, and STEP_SUMS, {{STEP_SUMS}}): f32 (variant
// wg_tiled, STEP_SUMS = 0) or f16 (wg_tiled_f16, `enable f16;`, STEP_SUMS = 1, for GPUs with
// double-rate half arithmetic); TILE ({{TILE}}: array and workgroup sizes) 64 or 128.
// The GPU-shaped variant: an implicit GEMM whose rows are the B*H*W output pixels and columns the
// output channels, tiled like linear_wg_tiled: a WGS x WGS workgroup (WGS = TILE / 8) owns TILE
// pixels x TILE channels, each invocation 8 x 8 outputs (pixels ty + WGS i, channels tx + WGS j); the Cin*K*K
// reduction is walked in steps of 8, staging the weight slice (consecutive invocations read
// consecutive k) and the input slice gathered on the fly (consecutive invocations read
// consecutive pixels; zero outside the image), converted to T, in workgroup memory. The sums run
// in T; with STEP_SUMS = 1 each step's 8-term sums are added to f32 accumulators (T = f16: about
// 1e-3 of the output's size, held to 3e-3; values within f16's range). The weight stays f32 in
// memory.
{{ENABLE}}
struct Params {
  B: u32, Cin: u32, Cout: u32, H: u32, W: u32,
  tilesN: u32, x_off: u32, r_off: u32, y_off: u32,
  hasResidual: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

override KSIZE: u32 = 3u;

const TILE: u32 = {{TILE}}u;
const WGS: u32 = TILE / 8u; // invocations per workgroup side
const BK: u32 = 8u;
const STEP_SUMS: u32 = {{STEP_SUMS}}u;

var<workgroup> xs: array<{{T}}, BK * TILE>; // [BK][TILE]: xs[kk * TILE + r] = input of pixel m0 + r at reduction index k0 + kk
var<workgroup> ws: array<{{T}}, BK * TILE>; // [BK][TILE]: ws[kk * TILE + c] = w[n0 + c, k0 + kk]

@compute @workgroup_size(WGS, WGS)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let group = wid.x + wid.y * nwg.x;
  let HW = p.H * p.W;
  let M = p.B * HW;
  let m0 = (group / p.tilesN) * TILE;
  let n0 = (group % p.tilesN) * TILE;
  if (m0 >= M) { return; } // uniform across the workgroup
  let KK = KSIZE * KSIZE;
  let Kd = p.Cin * KK;
  let pad = i32(KSIZE / 2u);
  let tx = lid.x;
  let ty = lid.y;
  // sums[2 i + h][c] = y at pixel m0 + ty + WGS i, channel n0 + tx + WGS (4 h + c): in T, and in f32 (acc) with STEP_SUMS.
  var sums = array<vec4<{{T}}>, 16>();
  var acc = array<vec4f, 16>();
  for (var k0 = 0u; k0 < Kd; k0 += BK) {
    for (var q = 0u; q < BK * TILE / (WGS * WGS); q++) {
      let e = li + WGS * WGS * q;
      // Input: consecutive invocations take consecutive pixels.
      let r = e % TILE;
      let kr = e / TILE;
      let m = m0 + r;
      let k = k0 + kr;
      var v = 0.0;
      if (m < M && k < Kd) {
        let b = m / HW;
        let pix = m % HW;
        let ci = k / KK;
        let tap = k % KK;
        let iy = i32(pix / p.W + tap / KSIZE) - pad;
        let ix = i32(pix % p.W + tap % KSIZE) - pad;
        if (iy >= 0 && iy < i32(p.H) && ix >= 0 && ix < i32(p.W)) {
          v = x[p.x_off + ((b * p.Cin + ci) * p.H + u32(iy)) * p.W + u32(ix)];
        }
      }
      xs[kr * TILE + r] = {{T}}(v);
      // Weight: consecutive invocations take consecutive k.
      let kk = e % BK;
      let c = e / BK;
      let n = n0 + c;
      let kw = k0 + kk;
      ws[kk * TILE + c] = {{T}}(select(0.0, w[min(n, p.Cout - 1u) * Kd + min(kw, Kd - 1u)], n < p.Cout && kw < Kd));
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
  for (var i = 0u; i < 8u; i++) {
    let m = m0 + ty + WGS * i;
    if (m >= M) { break; }
    let b = m / HW;
    let pix = m % HW;
    for (var j = 0u; j < 8u; j++) {
      let co = n0 + tx + WGS * j;
      if (co >= p.Cout) { break; }
      let o = (b * p.Cout + co) * HW + pix;
      var v = acc[2u * i + j / 4u][j % 4u] + f32(sums[2u * i + j / 4u][j % 4u]) + bias[co];
      if (p.hasResidual == 1u) { v += residual[p.r_off + o]; }
      y[p.y_off + o] = v;
    }
  }
}
