// attention's variants (softmax(q k^T * scale) v per batch item and head), which adapter uses
// which, and the calls each takes. Kernels: this folder's attention*.wgsl. Recording: attention.ts.
import type { CallDims, OpSpec } from '../types.js';

/** The sg kernels read q, k, v and o as vec4 rows. */
const vec4Views = ({ aligned, D }: CallDims) => (aligned ? undefined : `the head dim (${D}), the views' offsets and strides must be multiples of 4`);

export const ATTENTION: OpSpec = {
  op: 'attention',
  variants: [
    { name: 'lane', summary: 'one query per invocation, online softmax', kernels: ['attention'] },
    { name: 'sg', summary: 'queries across a subgroup share each K/V row through subgroup shuffles', kernels: ['attention_sg'], needs: ['subgroups8'], refuses: vec4Views },
    { name: 'sg2', summary: 'sg with two queries per invocation: each K/V row loaded feeds twice the multiply-adds', kernels: ['attention_sg'], needs: ['subgroups8'], refuses: vec4Views },
    { name: 'wg', summary: 'GPU-shaped flash attention: 64 queries per workgroup share K/V tiles staged in workgroup memory, online softmax', kernels: ['attention_wg'] },
  ],
  // CPU drivers: sg2 (1.5-2x sg in the kernel lab on lavapipe). GPUs: the flash-style kernel
  // (not yet timed on a GPU; sg made the H200's encode faster than lane, bench/gpu.sh times both).
  defaults: { cpu: ['sg2', 'sg'], gpu: ['wg'] },
  shapeClass: ({ Lq }) => (Lq >= 16 ? 'queries>=16' : 'queries<16'),
};
