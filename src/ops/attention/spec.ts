// attention's variants (softmax(q k^T * scale) v per batch item and head), which adapter uses
// which, and the calls each takes. Kernels: this folder's attention*.wgsl. Recording: attention.ts.
import type { CallDims, OpSpec } from '../types.js';

/** The sg kernels read q, k, v and o as vec4 rows. */
const vec4Views = ({ aligned, D }: CallDims) => (aligned ? undefined : `the head dim (${D}), the views' offsets and strides must be multiples of 4`);

/** attention_wg's workgroup: WG_QUERIES queries of WG_LANES invocations each (the lanes split a query's keys, then its channels). */
export const WG_QUERIES = 16;
export const WG_LANES = 8;

/**
 * attention_wg's workgroup memory with key tiles of `tile` rows: the query block, the k and v
 * tiles (rows HEAD_DIM | 1 floats apart), the probabilities (rows tile + 1 apart), one float per invocation.
 */
export function wgStorageBytes(D: number, tile: number): number {
  const stride = D | 1;
  return 4 * (WG_QUERIES * stride + 2 * tile * stride + WG_QUERIES * (tile + 1) + WG_QUERIES * WG_LANES);
}

/** wg must fit its smallest key tile in the device's workgroup storage. */
const wgFits = ({ D, workgroupStorage }: CallDims) =>
  wgStorageBytes(D, WG_LANES) <= workgroupStorage ? undefined : `the head dim (${D}): a ${WG_QUERIES}-query block and ${WG_LANES}-key tiles need ${wgStorageBytes(D, WG_LANES)} bytes of workgroup memory, over the device's ${workgroupStorage}`;

export const ATTENTION: OpSpec = {
  op: 'attention',
  variants: [
    { name: 'lane', summary: 'one query per invocation, online softmax', kernels: ['attention'] },
    { name: 'sg', summary: 'queries across a subgroup share each K/V row through subgroup shuffles', kernels: ['attention_sg'], needs: ['subgroups8'], refuses: vec4Views },
    { name: 'sg2', summary: 'sg with two queries per invocation: each K/V row loaded feeds twice the multiply-adds', kernels: ['attention_sg'], needs: ['subgroups8'], refuses: vec4Views },
    {
      name: 'wg',
      summary: `GPU-shaped flash attention: ${WG_QUERIES} queries per workgroup share K/V tiles staged in workgroup memory, ${WG_LANES} invocations per query (keys split for the scores, channels for the output), online softmax`,
      kernels: ['attention_wg'],
      refuses: wgFits,
    },
  ],
  // CPU drivers: sg2 (1.5-2x sg in the kernel lab on lavapipe). GPUs: the flash-style kernel
  // (not yet timed on a GPU; sg made the H200's encode faster than lane, bench/gpu.sh times both).
  defaults: { cpu: ['sg2', 'sg'], gpu: ['wg'] },
  shapeClass: ({ Lq }) => (Lq >= 16 ? 'queries>=16' : 'queries<16'),
};
