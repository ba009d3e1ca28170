// linear's variants (y = act(x @ w^T + bias) + residual), which adapter uses which, and the calls
// each takes. Kernels: this folder's linear*.wgsl. Recording: linear.ts. Measurements behind the
// defaults: bench/README.md, "Measurements behind design choices".
import type { CallDims, OpSpec } from '../types.js';

/** x is read as vec4 rows by the kn kernels. */
const kMultipleOf4 = ({ K }: CallDims) => (K % 4 === 0 ? undefined : `K = ${K} is not a multiple of 4`);

export const LINEAR: OpSpec = {
  op: 'linear',
  variants: [
    { name: 'tiled', summary: '4x4 outputs per invocation on the PyTorch [N,K] weight (any shape)', kernels: ['linear'] },
    { name: 'kn', summary: 'transposed [K,N] weight, 16 rows per workgroup, 4 columns per invocation (K % 4 == 0)', kernels: ['linear_kn'], packs: 'f32', refuses: kMultipleOf4 },
    { name: 'kn_sg', summary: 'kn with the rows shared through subgroup shuffles (K % 4 == 0)', kernels: ['linear_kn_sg'], needs: ['subgroups'], packs: 'f32', refuses: kMultipleOf4 },
    { name: 'kn_sg_f16', summary: 'kn_sg on f16 weights (8 columns per invocation), f32 math; tolerance 2e-3', kernels: ['linear_kn_sg_f16'], needs: ['subgroups'], tolerance: 2e-3, packs: 'f16', refuses: kMultipleOf4 },
    { name: 'wg_tiled', summary: 'GPU-shaped: 128x128 (or, for small outputs, 64x64) tile, 8x8 outputs per invocation, K in steps of 8 staged in workgroup memory, [N,K] weight (any shape)', kernels: ['linear_wg_tiled'] },
    { name: 'wg_tiled_f16', summary: 'wg_tiled in f16 arithmetic (staged halves, 8-term f16 sums added in f32; f32 weight); tolerance 3e-3', kernels: ['linear_wg_tiled'], needs: ['shader-f16'], tolerance: 3e-3 },
  ],
  // CPU drivers: the subgroup GEMM (every invocation a SIMD lane; shuffles share x's rows).
  // GPUs: the workgroup-tiled GEMM, the shape every fast GPU SGEMM has (not yet timed on a GPU:
  // bench/gpu.sh times it against kn_sg, which made the H200's encode 2.3x faster than tiled).
  defaults: { cpu: ['kn_sg', 'kn'], gpu: ['wg_tiled', 'kn_sg'], cpuF16: ['kn_sg_f16', 'kn_sg', 'kn'], gpuF16: ['wg_tiled_f16', 'kn_sg_f16', 'wg_tiled'] },
  shapeClass: ({ M }) => (M >= 64 ? 'rows>=64' : 'rows<64'),
};
