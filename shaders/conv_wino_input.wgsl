// conv_wino_input: the Winograd F(2x2, 3x3) input transform of a chunk of 2x2 output tiles
//   x  [B, Cin, H, W]        NCHW at x_off (element offset of batch item 0 in the bound range)
//   v  [16, Tc, Cin4]        v[p, t, ci] = (B^T d B)[p / 4, p % 4] for the 4x4 input patch d of
//                            tile t0 + t and channel ci (zero outside the image, padding 1, and
//                            for ci >= Cin); Cin4 = ceil(Cin/4)*4, so each v[p] is a GEMM input
//                            [Tc, Cin4] for linear_kn_sg
//   B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]   (Lavin & Gray, 2016)
// Tiles are numbered (b, ty, tx) over TH = ceil(H/2) by TW = ceil(W/2) per image; tile (ty, tx)
// makes outputs (2ty..2ty+1, 2tx..2tx+1) from inputs (2ty-1..2ty+2, 2tx-1..2tx+2).
// One invocation per channel ci and run of RUN consecutive tiles (ci fastest): the tile
// coordinates advance without divisions (integer division is scalarised on CPU drivers) and the
// loads are clamped and selected rather than branched around.
struct Params { Cin: u32, Cin4: u32, H: u32, W: u32, TH: u32, TW: u32, t0: u32, Tc: u32, x_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;

const RUN: u32 = 4u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  let ci = idx % p.Cin4;
  let t1 = (idx / p.Cin4) * RUN; // first tile of the run, in the chunk
  if (t1 >= p.Tc) { return; }
  let tg = p.t0 + t1;
  var tx = tg % p.TW;
  var ty = (tg / p.TW) % p.TH;
  var b = tg / (p.TW * p.TH);
  let chOk = ci < p.Cin;
  let plane = p.Tc * p.Cin4;
  for (var k = 0u; k < RUN; k++) {
    let t = t1 + k;
    if (t >= p.Tc) { break; }
    let base = p.x_off + (b * p.Cin + min(ci, p.Cin - 1u)) * p.H * p.W;
    var d: array<vec4f, 4>; // d[i][j] = x[b, ci, 2ty - 1 + i, 2tx - 1 + j], zero outside
    for (var i = 0u; i < 4u; i++) {
      let iy = i32(2u * ty + i) - 1;
      let rowOk = chOk && iy >= 0 && iy < i32(p.H);
      let row = base + u32(clamp(iy, 0, i32(p.H) - 1)) * p.W;
      for (var j = 0u; j < 4u; j++) {
        let ix = i32(2u * tx + j) - 1;
        d[i][j] = select(0.0, x[row + u32(clamp(ix, 0, i32(p.W) - 1))], rowOk && ix >= 0 && ix < i32(p.W));
      }
    }
    // Rows: s = B^T d (4 vec4 rows), then columns: (B^T d) B.
    let s = array<vec4f, 4>(d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]);
    for (var i = 0u; i < 4u; i++) {
      let r = s[i];
      let o = vec4f(r.x - r.z, r.y + r.z, r.z - r.y, r.y - r.w);
      for (var j = 0u; j < 4u; j++) { v[(4u * i + j) * plane + t * p.Cin4 + ci] = o[j]; }
    }
    tx++;
    if (tx == p.TW) {
      tx = 0u;
      ty++;
      if (ty == p.TH) { ty = 0u; b++; }
    }
  }
}
