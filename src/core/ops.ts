// The transformer's ops without variants, one function per kernel: checks shapes, allocates the
// output (a program activation) and records the dispatch. Shapes in comments are the tensors'
// logical shapes. linear, attention and layer_norm, which have variants, are op modules (src/ops/).
import type { Program } from './program.js';
import { splitRows, type SplitOptions } from './split.js';
import { Tensor, shapeStr } from './tensor.js';
import { cdiv, expect } from './arith.js';

/**
 * y = a + alpha * b, b broadcast over a's leading dims (b.numel divides a.numel); in ranges of
 * whole copies of b over the binding limit.
 */
export function addScaled(prog: Program, a: Tensor, b: Tensor, alpha = 1, label = 'add', opts: SplitOptions = {}): Tensor {
  expect(a.numel % b.numel === 0, () => `add: ${shapeStr(b.shape)} does not broadcast to ${shapeStr(a.shape)}`);
  const y = prog.alloc(a.shape, label);
  const nb = b.numel;
  splitRows(prog, `add ${label}`, a.numel / nb, [a, y], opts, (rows, [as, ys]) => {
    const n = rows * nb;
    prog.dispatch({ kernel: 'add_scaled', uniforms: { n, nb, alpha }, bind: { a: as, b, y: ys }, groups: cdiv(n, 256), cost: { bytes: 4 * (2 * n + nb) } });
  });
  return y;
}

/** Patches of a stride = kernel = P conv as matrix rows.  pixels [B, Cin, S, S] -> [B, G*G, Cin*P*P] */
export function patchIm2col(prog: Program, pixels: Tensor, P: number): Tensor {
  const [B, Cin, S, S2] = pixels.shape;
  expect(pixels.shape.length === 4 && S === S2, () => `patch embedding: pixels must be [B, C, S, S], got ${shapeStr(pixels.shape)}`);
  const G = Math.floor(S / P);
  const cols = prog.alloc([B, G * G, Cin * P * P], 'patches');
  prog.dispatch({ kernel: 'patch_im2col', uniforms: { B, Cin, S, P, G }, bind: { pixels, cols }, groups: cdiv(cols.numel, 256), cost: { bytes: 8 * cols.numel } });
  return cols;
}
