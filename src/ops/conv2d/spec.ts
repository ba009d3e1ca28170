// conv2d's variants (torch.nn.Conv2d, k = 1 or 3, stride 1, padding k/2, + bias + residual),
// which adapter uses which, and the calls each takes. Kernels: this folder's conv*.wgsl, and
// linear_kn_sg (../linear/) for the GEMM-shaped variants. Recording: conv2d.ts, winograd.ts.
import { cdiv } from '../../core/arith.js';
import type { CallDims, OpSpec, VariantInfo } from '../types.js';

/**
 * The Winograd variants serve 3x3 convs only; 1x1 convs (GEMMs already) go to gemm_kn in f32 (on
 * lavapipe faster than gemm_sg over the 384 decoder's 1x1 convs as a whole), to gemm_sg_f16 in f16.
 */
const ONE_BY_ONE_TO_GEMM: VariantInfo['delegates'] = { k1: { f32: 'gemm_kn', f16: 'gemm_sg_f16' } };

/** Winograd transform points per variant: the packed weight is points x Cin4 x Cout4 f32. */
export const WINOGRAD_POINTS = { winograd: 16, winograd4: 36 } as const;

/** A Winograd weight must fit one binding (F(4x4) of a 1024 -> 1024 conv is 151 MB). */
const winogradFits =
  (points: number) =>
  ({ Cin, Cout, bindingLimit }: CallDims) => {
    const bytes = points * cdiv(Cin, 4) * cdiv(Cout, 4) * 64;
    return bytes <= bindingLimit ? undefined : `its ${points}-point weight of ${Cin} -> ${Cout} channels (${bytes} bytes) exceeds the binding limit (${bindingLimit} bytes)`;
  };

export const CONV2D: OpSpec = {
  op: 'conv2d',
  variants: [
    { name: 'direct', summary: '4 output channels x 4 pixels per invocation on the [Cout,Cin,k,k] weight', kernels: ['conv2d'] },
    { name: 'gemm_sg', summary: 'implicit GEMM: 16 pixels per workgroup x 4 channels per invocation, transposed weight, subgroup shuffles', kernels: ['conv2d_gemm_sg'], needs: ['subgroups8'], packs: 'f32' },
    { name: 'gemm_sg_f16', summary: 'gemm_sg on f16 weights (8 channels per invocation), f32 math; tolerance 2e-3', kernels: ['conv2d_gemm_sg_f16'], needs: ['subgroups8'], tolerance: 2e-3, packs: 'f16' },
    {
      name: 'gemm_kn',
      summary: '1x1: the linear kn_sg GEMM on NCHW (the weight as loaded times each image as a [Cin, H*W] matrix; H*W and Cin % 4 == 0, else gemm_sg); 3x3 takes gemm_sg',
      kernels: ['linear_kn_sg'],
      needs: ['subgroups8'],
      refuses: ({ HW, Cin }) => (HW % 4 === 0 && Cin % 4 === 0 ? undefined : `H*W = ${HW} and Cin = ${Cin} must be multiples of 4`),
      fallback: 'gemm_sg',
      delegates: { k3: { f32: 'gemm_sg', f16: 'gemm_sg_f16' } },
    },
    { name: 'wg_tiled', summary: 'GPU-shaped implicit GEMM: 128 pixels x 128 channels (or 64 x 64 for small outputs) per workgroup, 8x8 per invocation, staged in workgroup memory', kernels: ['conv2d_wg_tiled'] },
    { name: 'wg_tiled_f16', summary: 'wg_tiled in f16 arithmetic (staged halves, 8-term f16 sums added in f32; f32 weight); tolerance 3e-3', kernels: ['conv2d_wg_tiled'], needs: ['shader-f16'], tolerance: 3e-3 },
    {
      name: 'winograd',
      summary: '3x3: Winograd F(2x2,3x3), 2.25x fewer multiply-adds: input transform, 16 GEMMs (linear kn_sg), output transform; 1x1 takes gemm_kn (f16: gemm_sg_f16)',
      kernels: ['conv_wino_input', 'linear_kn_sg', 'conv_wino_output'],
      needs: ['subgroups8'],
      packs: 'wino',
      refuses: winogradFits(WINOGRAD_POINTS.winograd),
      fallback: 'gemm_sg',
      delegates: ONE_BY_ONE_TO_GEMM,
      flopsShare: { k3: 4 / 9 },
    },
    {
      name: 'winograd4',
      summary: '3x3: Winograd F(4x4,3x3), 4x fewer multiply-adds, error ~1e-5 of the output (vs ~1e-6); as winograd with 36 GEMMs',
      kernels: ['conv_wino_input', 'linear_kn_sg', 'conv_wino_output'],
      needs: ['subgroups8'],
      tolerance: 3e-5,
      packs: 'wino4',
      refuses: winogradFits(WINOGRAD_POINTS.winograd4),
      fallback: 'winograd',
      delegates: ONE_BY_ONE_TO_GEMM,
      flopsShare: { k3: 1 / 4 },
    },
  ],
  // CPU drivers: F(4x4) Winograd for 3x3 (2.1-3.4x gemm_sg in the kernel lab on lavapipe; the
  // real-size decoder's output within 1e-5 of the direct kernel's), 1x1 through the GEMM.
  // GPUs: the workgroup-tiled implicit GEMM (not yet timed on a GPU; gemm_sg made the H200's
  // decode 2.3x slower than direct, which stays the fallback; bench/gpu.sh times all three).
  defaults: { cpu: ['winograd4', 'gemm_sg'], gpu: ['wg_tiled', 'direct'], gpuF16: ['wg_tiled_f16', 'wg_tiled'] },
  shapeClass: ({ K }) => `k${K}`,
  classesByWeight: ['k1', 'k3'],
};
