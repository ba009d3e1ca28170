// conv2d: y = conv2d(x, w, stride 1, padding (K-1)/2) + bias [+ residual]
//                                        (torch.nn.Conv2d with k x k kernel, then optional residual add)
//   x        [B, Cin, H, W]     NCHW; element (b, c, i, j) at x[x_off + ((b*Cin + c)*H + i)*W + j]
//   w        [Cout, Cin, K, K]  PyTorch Conv2d weight layout
//   bias     [Cout]
//   residual [B, Cout, H, W]    added after the bias when hasResidual = 1 (else any buffer), at r_off
//   y        [B, Cout, H, W]    at y_off
//   x_off, r_off, y_off: element offset of batch item 0 inside the bound range (the op binds batch
//   slices at aligned byte offsets so that no binding exceeds the adapter's limit).
// Variants (override constant): KSIZE (1 or 3; padding KSIZE/2). Flag (a uniform, so one pipeline serves both): hasResidual.
// Each invocation keeps 4 output channels x 4 consecutive pixels of one row in registers (no shared
// memory: barriers are costly on CPU drivers); accumulation in f32. The 64 invocations of a
// workgroup share their 4 output channels, so every weight load is the same address across the
// workgroup, and cover 64 pixel quads in raster order. H, W, Cin and Cout need not be multiples of 4.
struct Params {
  B: u32, Cin: u32, Cout: u32, H: u32, W: u32,
  quadsX: u32, pixGroups: u32, coBlocks: u32,
  x_off: u32, r_off: u32, y_off: u32,
  hasResidual: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

override KSIZE: u32 = 3u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.B * p.coBlocks * p.pixGroups) { return; }
  let pg = g % p.pixGroups;
  let co0 = ((g / p.pixGroups) % p.coBlocks) * 4u;
  let b = g / (p.pixGroups * p.coBlocks);
  let quad = pg * 64u + lid;
  if (quad >= p.H * p.quadsX) { return; }
  let oy = quad / p.quadsX;
  let ox0 = (quad % p.quadsX) * 4u;
  let KK = KSIZE * KSIZE;
  let pad = i32(KSIZE / 2u);
  let HW = p.H * p.W;

  // Weight rows of the 4 output channels (channels past Cout read the last one, never stored).
  var wr: array<u32, 4>;
  for (var c = 0u; c < 4u; c++) { wr[c] = min(co0 + c, p.Cout - 1u) * p.Cin * KK; }
  // Input columns ox0 - pad .. ox0 + 3 + pad: clamped index and whether it lies inside the image.
  var col: array<u32, 6>;
  var colIn: array<bool, 6>;
  for (var i = 0u; i < 3u + KSIZE; i++) {
    let ix = i32(ox0 + i) - pad;
    colIn[i] = ix >= 0 && ix < i32(p.W);
    col[i] = u32(clamp(ix, 0, i32(p.W) - 1));
  }

  var acc: array<vec4f, 4>; // acc[pixel][output channel]
  for (var ci = 0u; ci < p.Cin; ci++) {
    let xc = p.x_off + (b * p.Cin + ci) * HW;
    for (var ky = 0u; ky < KSIZE; ky++) {
      let iy = i32(oy + ky) - pad;
      let rowIn = iy >= 0 && iy < i32(p.H);
      let xr = xc + u32(clamp(iy, 0, i32(p.H) - 1)) * p.W;
      var v: array<f32, 6>; // zero padding outside the image
      for (var i = 0u; i < 3u + KSIZE; i++) { v[i] = select(0.0, x[xr + col[i]], rowIn && colIn[i]); }
      let wk = ci * KK + ky * KSIZE;
      for (var kx = 0u; kx < KSIZE; kx++) {
        let wv = vec4f(w[wr[0] + wk + kx], w[wr[1] + wk + kx], w[wr[2] + wk + kx], w[wr[3] + wk + kx]);
        for (var j = 0u; j < 4u; j++) { acc[j] += v[j + kx] * wv; }
      }
    }
  }

  for (var j = 0u; j < 4u; j++) {
    let ox = ox0 + j;
    if (ox >= p.W) { break; }
    for (var c = 0u; c < 4u; c++) {
      let co = co0 + c;
      if (co >= p.Cout) { break; }
      let o = ((b * p.Cout + co) * p.H + oy) * p.W + ox;
      var val = acc[j][c] + bias[co];
      if (p.hasResidual == 1u) { val += residual[p.r_off + o]; }
      y[p.y_off + o] = val;
    }
  }
}
