// conv2d_gemm_sg: y = conv2d(x, w, stride 1, padding (K-1)/2) + bias [+ residual]
//                                        (torch.nn.Conv2d with k x k kernel, then optional residual add)
//   x        [B, Cin, H, W]       NCHW; element (b, c, i, j) at x[x_off + ((b*Cin + c)*H + i)*W + j]
//   wt       [Cin*K*K, Cop]       the weight [Cout, Cin, K, K] as a [Cout, Cin*K*K] matrix, transposed
//                                 and zero-padded to Cop = ceil(Cout/4)*4 columns, read as vec4
//                                 (linear_pack makes it once per weight)
//   bias     [Cout]
//   residual [B, Cout, H, W]      added after the bias when hasResidual = 1 (else any buffer), at r_off
//   y        [B, Cout, H, W]      at y_off
//   x_off, r_off, y_off: element offset of batch item 0 inside the bound range (the op binds batch
//   slices at aligned byte offsets so that no binding exceeds the adapter's limit).
// Variants (override constant): KSIZE (1 or 3; padding KSIZE/2). Flag (a uniform, so one pipeline serves both): hasResidual.
// An implicit GEMM for CPU drivers (lavapipe), shaped like linear_kn_sg: a workgroup owns a run
// of 16 pixels of one output row (the GEMM's rows) and each invocation 4 consecutive output
// channels (its columns), so a vec4 weight load feeds 64 multiply-adds. For each input channel
// and kernel row, the 16 + K - 1 input values the run needs are loaded once per group of 8 lanes
// (3 per lane) and passed around with subgroupShuffle, so no lane loads what another has.
// Needs subgroups whose size is a multiple of 8 (lanes work in groups of 8). No shared memory.
// WORKGROUP ({{WORKGROUP}}, a placeholder) invocations per workgroup: 16 or 8 on lavapipe, where a
// workgroup of 32 or 64 was slower (its invocations' spilled registers outgrow L1; bench/README.md).
// Every invocation stays active through the loop (edge pixels and channels are clamped and
// never stored), as the shuffles need. Accumulation in f32.
enable subgroups;

struct Params {
  B: u32, Cin: u32, Cout: u32, H: u32, W: u32,
  Cop4: u32, groupsN: u32, runsX: u32,
  x_off: u32, r_off: u32, y_off: u32,
  hasResidual: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

override KSIZE: u32 = 3u;
/** Output pixels per workgroup (one run along a row). */
const RUN: u32 = 16u;

@compute @workgroup_size({{WORKGROUP}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let run = g / p.groupsN; // (b, oy, run along x), uniform across the workgroup
  if (run >= p.B * p.H * p.runsX) { return; }
  let ox0 = (run % p.runsX) * RUN;
  let oy = (run / p.runsX) % p.H;
  let b = run / (p.runsX * p.H);
  let c4 = (g % p.groupsN) * {{WORKGROUP}}u + lid;
  let cc = min(c4, p.Cop4 - 1u);
  let lane = sid & 7u;
  let base = sid & ~7u; // first lane of this invocation's group of 8
  let pad = i32(KSIZE / 2u);
  let HW = p.H * p.W;
  // Input column of segment value lane + 8 s (s = 0, 1, 2): ox0 - pad + lane + 8 s, and whether it is inside the image.
  var col: array<u32, 3>;
  var colIn: array<bool, 3>;
  for (var s = 0u; s < 3u; s++) {
    let ix = i32(ox0 + lane + 8u * s) - pad;
    colIn[s] = ix >= 0 && ix < i32(p.W);
    col[s] = u32(clamp(ix, 0, i32(p.W) - 1));
  }
  let KK = KSIZE * KSIZE;
  var acc: array<vec4f, RUN>; // acc[q] = y[b, 4 c4 .. 4 c4 + 3, oy, ox0 + q]
  for (var ci = 0u; ci < p.Cin; ci++) {
    let xc = p.x_off + (b * p.Cin + ci) * HW;
    for (var ky = 0u; ky < KSIZE; ky++) {
      let iy = i32(oy + ky) - pad;
      let rowIn = iy >= 0 && iy < i32(p.H);
      let xr = xc + u32(clamp(iy, 0, i32(p.H) - 1)) * p.W;
      // seg[s] on lane l = input value at column ox0 - pad + l + 8 s (zero outside the image).
      var seg: array<f32, 3>;
      for (var s = 0u; s < 3u; s++) { seg[s] = select(0.0, x[xr + col[s]], rowIn && colIn[s]); }
      let wk = (ci * KK + ky * KSIZE) * p.Cop4 + cc;
      for (var kx = 0u; kx < KSIZE; kx++) {
        let wv = wt[wk + kx * p.Cop4];
        for (var q = 0u; q < RUN; q++) {
          let j = q + kx; // segment position of pixel q's input at this tap
          let a = subgroupShuffle(seg[j >> 3u], base + (j & 7u));
          acc[q] = fma(vec4f(a), wv, acc[q]);
        }
      }
    }
  }
  if (c4 >= p.Cop4) { return; }
  for (var q = 0u; q < RUN; q++) {
    let ox = ox0 + q;
    if (ox >= p.W) { break; }
    for (var c = 0u; c < 4u; c++) {
      let co = 4u * c4 + c;
      if (co >= p.Cout) { break; }
      let o = ((b * p.Cout + co) * p.H + oy) * p.W + ox;
      var v = acc[q][c] + bias[co];
      if (p.hasResidual == 1u) { v += residual[p.r_off + o]; }
      y[p.y_off + o] = v;
    }
  }
}
