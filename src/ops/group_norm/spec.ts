// group_norm's variants (torch.nn.GroupNorm [+ SiLU]), which adapter uses which, and the calls
// each takes. Kernels: this folder's groupnorm*.wgsl. Recording: group_norm.ts.
import type { OpSpec } from '../types.js';

export const GROUP_NORM: OpSpec = {
  op: 'group_norm',
  variants: [
    { name: 'chunked', summary: 'statistics per chunk of 512 values (two passes), merge, normalise', kernels: ['groupnorm_stats', 'groupnorm_stats_combine', 'groupnorm'] },
    {
      name: 'vec4',
      summary: 'one-pass shifted sums per chunk, vec4 loads and stores (H*W % 4 == 0)',
      kernels: ['groupnorm_stats_vec4', 'groupnorm_stats_combine', 'groupnorm_vec4'],
      refuses: ({ HW, aligned }) => (HW % 4 === 0 && aligned ? undefined : `H*W = ${HW} must be a multiple of 4 and the input start on a vec4`),
    },
    {
      name: 'wg',
      summary: 'a workgroup per chunk of 4096 values (tree of pairwise merges), a workgroup per group merges them, vec4 normalise (H*W % 4 == 0)',
      kernels: ['groupnorm_stats_wg', 'groupnorm_stats_combine_wg', 'groupnorm_vec4'],
      refuses: ({ HW, aligned }) => (HW % 4 === 0 && aligned ? undefined : `H*W = ${HW} must be a multiple of 4 and the input start on a vec4`),
      fallback: 'chunked',
    },
  ],
  // vec4 is the faster on lavapipe (kernel lab). wg is the GPU-shaped one (workgroup reductions:
  // many workgroups per group at batch 1, where chunked merges each group in one invocation); not
  // yet timed on a GPU.
  defaults: { cpu: ['vec4'], gpu: ['wg', 'chunked'] },
  shapeClass: () => 'all',
};
