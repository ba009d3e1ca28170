// conv2d's float64 reference, written straight from torch.nn.Conv2d (no tiling, no transform).
import { everyElement } from '../case-kit.js';

/** Element o of Conv2d(k x k, stride 1, padding k/2) + bias [+ residual]: x [B,Cin,H,W], w [Cout,Cin,k,k] -> [B,Cout,H,W]. */
export function conv2dAt(x: Float32Array, Cin: number, H: number, W: number, w: Float32Array, Cout: number, K: number, bias: Float32Array, residual?: Float32Array): (o: number) => number {
  const pad = Math.floor(K / 2);
  return (o) => {
    const j = o % W;
    const i = Math.floor(o / W) % H;
    const co = Math.floor(o / (H * W)) % Cout;
    const b = Math.floor(o / (Cout * H * W)); // batch item
    let acc = bias[co];
    for (let ci = 0; ci < Cin; ci++)
      for (let ky = 0; ky < K; ky++) {
        const iy = i + ky - pad;
        if (iy < 0 || iy >= H) continue;
        for (let kx = 0; kx < K; kx++) {
          const ix = j + kx - pad;
          if (ix >= 0 && ix < W) acc += x[((b * Cin + ci) * H + iy) * W + ix] * w[((co * Cin + ci) * K + ky) * K + kx];
        }
      }
    return acc + (residual ? residual[o] : 0);
  };
}

/** Every element of conv2dAt. */
export function conv2dRef(x: Float32Array, B: number, Cin: number, H: number, W: number, w: Float32Array, Cout: number, K: number, bias: Float32Array, residual?: Float32Array): Float64Array {
  return everyElement(B * Cout * H * W, conv2dAt(x, Cin, H, W, w, Cout, K, bias, residual));
}
