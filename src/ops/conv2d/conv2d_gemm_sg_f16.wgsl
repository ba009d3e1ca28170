// conv2d_gemm_sg_f16: y = conv2d(x, w, stride 1, padding (K-1)/2) + bias [+ residual], the weight stored as halves
//                                        (torch.nn.Conv2d with k x k kernel, then optional residual add)
//   x        [B, Cin, H, W]        NCHW f32; element (b, c, i, j) at x[x_off + ((b*Cin + c)*H + i)*W + j]
//   wh       [Cin*K*K, Np/8] vec4u the weight [Cout, Cin, K, K] as a [Cout, Cin*K*K] matrix, transposed,
//                                  8 output channels per vec4u as half pairs, zero-padded to
//                                  Np = ceil(Cout/8)*8 (linear_pack_f16 makes it once per weight)
//   bias     [Cout]
//   residual [B, Cout, H, W]       added after the bias when hasResidual = 1 (else any buffer), at r_off
//   y        [B, Cout, H, W]       at y_off
//   x_off, r_off, y_off: element offset of batch item 0 inside the bound range.
// Variants (override constant): KSIZE (1 or 3; padding KSIZE/2). Flag (a uniform, so one pipeline serves both): hasResidual.
// conv2d_gemm_sg with f16 weights: each invocation owns 8 consecutive output channels, so one
// 4-component load brings 8 weights (half the load instructions per weight on CPU drivers, half
// the bytes) and feeds 128 multiply-adds; inputs, products and sums stay f32. Accuracy: the
// weight's f16 rounding (relative 2^-11 per weight); held to 2e-3 rel_to_max, never to the f32
// bound. Needs subgroups whose size is a multiple of 8. Placeholders: WORKGROUP ({{WORKGROUP}})
// invocations per workgroup; RUN ({{RUN}}, 16 or less) output pixels per workgroup, 16 for 1x1
// and 8 for 3x3 on lavapipe (with 16, the 3x3 loop's 2 x 16 accumulators spill: slower, see
// bench/README.md).
enable subgroups;

struct Params {
  B: u32, Cin: u32, Cout: u32, H: u32, W: u32,
  Np8: u32, groupsN: u32, runsX: u32,
  x_off: u32, r_off: u32, y_off: u32,
  hasResidual: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wh: array<vec4u>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

override KSIZE: u32 = 3u;
/** Output pixels per workgroup (one run along a row); the input segment below covers RUN + 2 <= 24. */
const RUN: u32 = {{RUN}}u;

/** Channels 0..3 and 4..7 of a packed row. */
fn lo(h: vec4u) -> vec4f { return vec4f(unpack2x16float(h.x), unpack2x16float(h.y)); }
fn hi(h: vec4u) -> vec4f { return vec4f(unpack2x16float(h.z), unpack2x16float(h.w)); }

@compute @workgroup_size({{WORKGROUP}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let run = g / p.groupsN; // (b, oy, run along x), uniform across the workgroup
  if (run >= p.B * p.H * p.runsX) { return; }
  let ox0 = (run % p.runsX) * RUN;
  let oy = (run / p.runsX) % p.H;
  let b = run / (p.runsX * p.H);
  let c8 = (g % p.groupsN) * {{WORKGROUP}}u + lid;
  let cc = min(c8, p.Np8 - 1u);
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
  var accLo: array<vec4f, RUN>; // accLo[q] = y[b, 8 c8 .. 8 c8 + 3, oy, ox0 + q]
  var accHi: array<vec4f, RUN>; // accHi[q] = y[b, 8 c8 + 4 .. 8 c8 + 7, oy, ox0 + q]
  for (var ci = 0u; ci < p.Cin; ci++) {
    let xc = p.x_off + (b * p.Cin + ci) * HW;
    for (var ky = 0u; ky < KSIZE; ky++) {
      let iy = i32(oy + ky) - pad;
      let rowIn = iy >= 0 && iy < i32(p.H);
      let xr = xc + u32(clamp(iy, 0, i32(p.H) - 1)) * p.W;
      // seg[s] on lane l = input value at column ox0 - pad + l + 8 s (zero outside the image).
      var seg: array<f32, 3>;
      for (var s = 0u; s < 3u; s++) { seg[s] = select(0.0, x[xr + col[s]], rowIn && colIn[s]); }
      let wk = (ci * KK + ky * KSIZE) * p.Np8 + cc;
      for (var kx = 0u; kx < KSIZE; kx++) {
        let h = wh[wk + kx * p.Np8];
        let wl = lo(h);
        let wu = hi(h);
        for (var q = 0u; q < RUN; q++) {
          let j = q + kx; // segment position of pixel q's input at this tap
          let a = subgroupShuffle(seg[j >> 3u], base + (j & 7u));
          accLo[q] = fma(vec4f(a), wl, accLo[q]);
          accHi[q] = fma(vec4f(a), wu, accHi[q]);
        }
      }
    }
  }
  if (c8 >= p.Np8) { return; }
  for (var q = 0u; q < RUN; q++) {
    let ox = ox0 + q;
    if (ox >= p.W) { break; }
    for (var c = 0u; c < 8u; c++) {
      let co = 8u * c8 + c;
      if (co >= p.Cout) { break; }
      let o = ((b * p.Cout + co) * p.H + oy) * p.W + ox;
      var v = select(accHi[q][c & 3u], accLo[q][c & 3u], c < 4u) + bias[co];
      if (p.hasResidual == 1u) { v += residual[p.r_off + o]; }
      y[p.y_off + o] = v;
    }
  }
}
