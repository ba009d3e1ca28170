// patch_im2col: the patches of a stride = kernel = P convolution as rows of a matrix, so that
// Conv2d(Cin, C, P, stride P) = linear(cols, weight.view(C, Cin*P*P)) + bias.
//   pixels [B, Cin, S, S] (NCHW), cols [B * G * G, Cin * P * P] with G = S / P (floor; the
//   official conv has no padding), row = b*G*G + py*G + px (raster order), column = ci*P*P + ky*P + kx.
struct Params { B: u32, Cin: u32, S: u32, P: u32, G: u32, }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pixels: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * 256u + lid;
  let width = p.Cin * p.P * p.P;
  if (idx >= p.B * p.G * p.G * width) { return; }
  let col = idx % width;
  let row = idx / width;
  let kx = col % p.P;
  let ky = (col / p.P) % p.P;
  let ci = col / (p.P * p.P);
  let px = row % p.G;
  let py = (row / p.G) % p.G;
  let b = row / (p.G * p.G);
  cols[idx] = pixels[((b * p.Cin + ci) * p.S + py * p.P + ky) * p.S + px * p.P + kx];
}
