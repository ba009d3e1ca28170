// layer_norm's variants (torch.nn.LayerNorm over the last dim), which adapter uses which.
// Kernels: this folder's layernorm*.wgsl. Recording: layer_norm.ts.
import type { OpSpec } from '../types.js';

export const LAYER_NORM: OpSpec = {
  op: 'layer_norm',
  variants: [
    { name: 'rows', summary: 'one invocation per row, two passes over it (mean, centred variance)', kernels: ['layernorm'] },
    { name: 'wg', summary: 'one workgroup per row, its invocations strided over C, the two passes merged in workgroup memory', kernels: ['layernorm_wg'] },
  ],
  // rows on CPU drivers (each invocation a SIMD lane: a row per lane vectorises). On a GPU rows
  // leaves the device idle at batch 1 (729 rows: 12 workgroups); wg spreads each row over a
  // workgroup (not yet timed on a GPU).
  defaults: { cpu: ['rows'], gpu: ['wg'] },
  shapeClass: () => 'all',
};
