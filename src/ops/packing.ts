// Packed weight layouts: a weight as a variant reads it (transposed, in halves, in a Winograd
// domain), made once per weight by a dispatch submitted at once and kept beside it. Variants name
// their layout in their spec (VariantInfo.packs); the kernels are linear_pack(_f16).wgsl
// (linear/) and conv_wino_pack.wgsl (conv2d/).
import type { Defines } from '../core/kernels.js';
import type { Program } from '../core/program.js';
import { Tensor, type GpuDType } from '../core/tensor.js';
import { cdiv } from '../core/arith.js';
import type { PackedLayout } from './types.js';

/** Packed copies of weights by source buffer: layout key -> tensor. */
const packed = new WeakMap<GPUBuffer, Map<string, Tensor>>();

/** A packed weight layout: its element type, the kernel that makes it, and its size for a weight of N outputs by K inputs. */
interface Packing {
  dtype: GpuDType;
  kernel: string;
  defines?: Defines;
  /** The packing kernel's output binding. */
  out: string;
  label: string;
  plan(N: number, K: number): { shape: number[]; invocations: number; uniforms: Record<string, number> };
}

/** A 3x3 conv weight [N, K, 3, 3] as P Winograd-domain [K4, N4] matrices (K4, N4 = K, N rounded up to 4); one invocation per (k, vec4 of n). */
function winogradPlan(P: number): Packing['plan'] {
  return (N, K) => ({ shape: [P, cdiv(K, 4) * 4, cdiv(N, 4) * 4], invocations: cdiv(K, 4) * 4 * cdiv(N, 4), uniforms: { Cout: N, Cin: K, Cin4: cdiv(K, 4) * 4, Cop4: cdiv(N, 4) } });
}

/** The packed layouts, by the name variants give in VariantInfo.packs. */
export const PACKINGS: Record<PackedLayout, Packing> = {
  // [K, Np] f32, Np = ceil(N/4)*4: the linear_kn* and conv2d gemm_sg kernels; one invocation per vec4.
  f32: { dtype: 'f32', kernel: 'linear_pack', out: 'wt', label: '[K,N]', plan: (N, K) => ({ shape: [K, cdiv(N, 4) * 4], invocations: K * cdiv(N, 4), uniforms: { N, K, Np4: cdiv(N, 4) } }) },
  // [K, Np] in half pairs, Np = ceil(N/8)*8 (vec4u of 8 halves): the *_f16 kernels, see linear_pack_f16.wgsl.
  f16: { dtype: 'u32', kernel: 'linear_pack_f16', out: 'wh', label: '[K,N] f16', plan: (N, K) => ({ shape: [K, cdiv(N, 8) * 4], invocations: K * cdiv(N, 8), uniforms: { N, K, Np8: cdiv(N, 8) } }) },
  // A 3x3 conv weight in the F(2x2, 3x3) domain: 16 matrices, see conv_wino_pack.wgsl.
  wino: { dtype: 'f32', kernel: 'conv_wino_pack', defines: { TILE: 2 }, out: 'u', label: '[16,Cin,Cout] winograd', plan: winogradPlan(16) },
  // The same in the F(4x4, 3x3) domain: 36 matrices.
  wino4: { dtype: 'f32', kernel: 'conv_wino_pack', defines: { TILE: 4 }, out: 'u', label: '[36,Cin,Cout] winograd4', plan: winogradPlan(36) },
};

/**
 * The weight w [N, K] (or a conv weight [N, Cin, k, k]) in a packed layout (PACKINGS), the
 * missing columns zero. Made once per weight buffer and layout, by a dispatch submitted right
 * away (queue order puts it before any program that reads it); freed by releasePacked
 * (Weights.destroy calls it). The program's onPacked hook hears of each new packing.
 */
export function packedWeight(prog: Program, w: Tensor, N: number, K: number, layout: PackedLayout = 'f32'): Tensor {
  const p = PACKINGS[layout];
  const key = `${layout}|${w.offset}|${N}x${K}`;
  let byLayout = packed.get(w.buffer);
  const hit = byLayout?.get(key);
  if (hit) return hit;
  const plan = p.plan(N, K);
  const numel = plan.shape.reduce((a, b) => a * b, 1);
  const buffer = prog.gpu.device.createBuffer({
    label: `${w.label} ${p.label} packed`,
    size: Math.max(16, numel * 4),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const out = new Tensor(buffer, plan.shape, p.dtype, 0, `${w.label} ${p.label}`);
  out.pinned = true;
  prog.runNow({ kernel: p.kernel, defines: p.defines, uniforms: plan.uniforms, bind: { w, [p.out]: out }, groups: cdiv(plan.invocations, 64) });
  if (!byLayout) packed.set(w.buffer, (byLayout = new Map()));
  byLayout.set(key, out);
  prog.onPacked?.(w);
  return out;
}

/** Bytes of the packed copies made of a weight buffer (0 when none). */
export function packedBytes(buffer: GPUBuffer): number {
  let s = 0;
  for (const t of packed.get(buffer)?.values() ?? []) s += t.buffer.size;
  return s;
}

/** Frees the packed copies made of a weight buffer. */
export function releasePacked(buffer: GPUBuffer): void {
  for (const t of packed.get(buffer)?.values() ?? []) t.buffer.destroy();
  packed.delete(buffer);
}
