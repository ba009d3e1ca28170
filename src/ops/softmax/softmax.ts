// softmax: the decoder attention's row softmax, a = softmax(scale * s) per row (AttnBlock's
// F.softmax(w_, dim=2)), in the variant the adapter's choice gives (spec.ts): a row per
// invocation, or a row per workgroup.
import { cdiv } from '../../core/arith.js';
import type { Program } from '../../core/program.js';
import type { Slice } from '../../core/split.js';
import { variantsOf } from '../choice.js';

/** a = softmax(scale * s) over each of `rows` rows of N scores.  s, a [rows, N] at their slices' offsets */
export function softmaxRows(prog: Program, s: Slice, a: Slice, rows: number, N: number, scale: number): void {
  const variant = variantsOf(prog.kernels).choose('softmax', { rows, N }, () => `softmax of '${s.t.label}' (${rows} rows of ${N})`);
  const wg = variant === 'wg';
  prog.dispatch({
    kernel: wg ? 'softmax_rows_wg' : 'spatial_attention_softmax',
    uniforms: { rows, N, s_off: s.off, a_off: a.off, scale },
    bind: { s: s.t, a: a.t },
    groups: wg ? rows : cdiv(rows, 64),
    cost: { bytes: 8 * rows * N },
  });
}
