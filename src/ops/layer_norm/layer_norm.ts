// layer_norm: torch.nn.LayerNorm over the last dim, in the variant the adapter's choice gives
// (spec.ts): a row per invocation, or a row per workgroup.
import { cdiv, expect } from '../../core/arith.js';
import type { Program } from '../../core/program.js';
import { splitRows, type SplitOptions } from '../../core/split.js';
import { Tensor, lastDim, shapeStr } from '../../core/tensor.js';
import { variantsOf } from '../choice.js';

/** torch.nn.LayerNorm over the last dim.  x [..., C] -> [..., C] (in ranges of rows over the binding limit) */
export function layerNorm(prog: Program, x: Tensor, gamma: Tensor, beta: Tensor, eps: number, label = gamma.label, opts: SplitOptions = {}): Tensor {
  const C = lastDim(x);
  expect(gamma.numel === C && beta.numel === C, () => `layer_norm ${gamma.label}: weight ${shapeStr(gamma.shape)} for input ${shapeStr(x.shape)}`);
  const y = prog.alloc(x.shape, label);
  const M = x.numel / C;
  const variant = variantsOf(prog.kernels).choose('layer_norm', { rows: M, C }, () => `layer_norm ${label} on ${shapeStr(x.shape)}`);
  splitRows(prog, `layer_norm ${label}`, M, [x, y], opts, (rows, [xs, ys]) => {
    const wg = variant === 'wg';
    prog.dispatch({ kernel: wg ? 'layernorm_wg' : 'layernorm', uniforms: { rows, C, eps }, bind: { x: xs, gamma, beta, y: ys }, groups: wg ? rows : cdiv(rows, 64), cost: { bytes: 8 * rows * C } });
  });
  return y;
}
