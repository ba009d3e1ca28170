// rq_search's variants (the residual quantizer's nearest-codeword search), which adapter uses
// which. Kernels: this folder's rq_search*.wgsl. Recording: rq_search.ts.
import type { OpSpec } from '../types.js';

export const RQ_SEARCH: OpSpec = {
  op: 'rq_search',
  variants: [
    { name: 'lanes', summary: 'each invocation scans the whole codebook for 4 tokens (the codebook loads are uniform)', kernels: ['rq_search'] },
    { name: 'workgroup', summary: 'one workgroup per token, the codebook split across its invocations, argmin merged in workgroup memory', kernels: ['rq_search_wg'] },
  ],
  // lanes is the faster on lavapipe, and was latency-bound on an H200 (183 invocations of serial
  // work at the released size: 57 ms per quantizer); workgroup spreads the search over 729 x 256
  // invocations (not yet timed on a GPU; bench/gpu.sh times both).
  defaults: { cpu: ['lanes'], gpu: ['workgroup'] },
  shapeClass: () => 'all',
};
