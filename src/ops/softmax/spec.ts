// softmax's variants (the decoder attention's row softmax, softmax(scale * s) over each row of
// scores), which adapter uses which. Kernels: spatial_attention_softmax.wgsl and softmax_rows_wg.wgsl
// in this folder. Recording: softmax.ts.
import type { OpSpec } from '../types.js';

export const SOFTMAX: OpSpec = {
  op: 'softmax',
  variants: [
    { name: 'rows', summary: 'one invocation per row: max, sum of exponentials, normalised values', kernels: ['spatial_attention_softmax'] },
    { name: 'wg', summary: 'one workgroup per row, its invocations strided over the row, max and sum merged in workgroup memory', kernels: ['softmax_rows_wg'] },
  ],
  // rows on CPU drivers (each invocation a SIMD lane: a row per lane vectorises). On a GPU rows
  // leaves the device idle at batch 1 (576 rows: 9 workgroups); wg spreads each row over a
  // workgroup (not yet timed on a GPU).
  defaults: { cpu: ['rows'], gpu: ['wg'] },
  shapeClass: () => 'all',
};
