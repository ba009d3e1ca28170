// upsample_nearest2x: y[b, c, i, j] = x[b, c, i / 2, j / 2]
//                                        (F.interpolate(x, scale_factor=2.0, mode="nearest"))
//   x [B, C, H, W] NCHW at x_off, y [B, C, 2H, 2W] at y_off
// One invocation per run of RUN ({{RUN}}, a placeholder) input values along a row (rows = B*C*H,
// runsX = ceil(W / RUN) runs per row): each value is loaded once and stored to its 2x2 outputs;
// the coordinates take one division per run, not three per output (integer division is done lane
// by lane on CPU drivers).
struct Params { rows: u32, W: u32, runsX: u32, x_off: u32, y_off: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const RUN: u32 = {{RUN}}u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
  let row = idx / p.runsX; // b * C * H + c * H + i
  if (row >= p.rows) { return; }
  let j0 = (idx % p.runsX) * RUN;
  let W2 = 2u * p.W;
  let top = p.y_off + 2u * row * W2; // output row 2i of the same plane (plane * 2H + 2i = 2 row)
  for (var k = 0u; k < RUN; k++) {
    let j = j0 + k;
    if (j >= p.W) { break; }
    let v = x[p.x_off + row * p.W + j];
    y[top + 2u * j] = v;
    y[top + 2u * j + 1u] = v;
    y[top + W2 + 2u * j] = v;
    y[top + W2 + 2u * j + 1u] = v;
  }
}
