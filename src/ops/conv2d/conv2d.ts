// conv2d: torch.nn.Conv2d (k = 1 or 3, stride 1, padding k/2) + bias + residual on NCHW images,
// in the variant the adapter's choice gives (spec.ts); the Winograd variants are in winograd.ts.
// Every variant binds its activations in batch ranges that fit (split.ts splitBatch).
import { cdiv, expect } from '../../core/arith.js';
import type { Program } from '../../core/program.js';
import { splitBatch, type SplitOptions } from '../../core/split.js';
import { Tensor, nchw, sameShape, shapeStr } from '../../core/tensor.js';
import { pickWorkgroup, variantsOf } from '../choice.js';
import { arithmetic, gemmKnSg, wgTile } from '../linear/linear.js';
import { packedWeight } from '../packing.js';
import { isWinograd, winograd3x3 } from './winograd.js';

export interface Conv2dOptions extends SplitOptions {
  /** Added to the output (shape of the output), e.g. the ResnetBlock shortcut. */
  residual?: Tensor;
  label?: string;
  /**
   * The 'winograd' variants' scratch: bytes of each of their two buffers at most (default 32 MiB,
   * never over the binding limit); the tiles are done in chunks that fit. Tests lower it.
   */
  winogradScratchBytes?: number;
}

/**
 * torch.nn.Conv2d(k x k, stride 1, padding k/2) with bias, + residual.  x [B,Cin,H,W], w [Cout,Cin,k,k] (k = 1 or 3) -> [B,Cout,H,W]
 * The kernel is the variant chosen for this adapter (spec.ts); gemm_sg reads the weight as a
 * transposed [Cin*k*k, Cout] matrix, packed once per weight on first use (packing.ts),
 * gemm_sg_f16 the same matrix in halves, winograd / winograd4 (3x3) 16 / 36 Winograd-domain matrices.
 */
export function conv2d(prog: Program, x: Tensor, w: Tensor, bias: Tensor, opts: Conv2dOptions = {}): Tensor {
  const label = opts.label ?? w.label;
  const [B, Cin, H, W] = nchw(x, `conv2d ${label}`);
  const [Cout, wCin, K, K2] = w.shape;
  expect(w.shape.length === 4 && wCin === Cin && K === K2 && (K === 1 || K === 3), () => `conv2d ${label}: weight ${shapeStr(w.shape)} for input ${shapeStr(x.shape)} (want [Cout, ${Cin}, k, k], k = 1 or 3)`);
  expect(bias.numel === Cout, () => `conv2d ${label}: bias ${shapeStr(bias.shape)} for ${Cout} output channels`);
  const outShape = [B, Cout, H, W];
  const residual = opts.residual;
  if (residual) expect(sameShape(residual.shape, outShape), () => `conv2d ${label}: residual ${shapeStr(residual.shape)} for output ${shapeStr(outShape)}`);
  const y = prog.alloc(outShape, label);
  const cost = (n: number) => ({ flops: 2 * n * Cout * H * W * Cin * K * K, bytes: 4 * (w.numel + n * (Cin + Cout * (residual ? 2 : 1)) * H * W) });
  const what = () => `conv2d ${label} ${shapeStr(w.shape)} on ${shapeStr(x.shape)}`;
  const variant = variantsOf(prog.kernels).choose('conv2d', { K, Cin, Cout, HW: H * W, bindingLimit: prog.gpu.limits.maxStorageBufferBindingSize }, what);
  if (isWinograd(variant)) {
    // 3x3 only: 1x1 convs are GEMMs already and the choice delegates them (spec.ts).
    winograd3x3(prog, variant, x, w, bias, y, label, residual, opts);
    return y;
  }
  if (variant === 'gemm_kn') {
    conv1x1Gemm(prog, x, w, bias, y, label, residual, opts);
    return y;
  }
  if (variant === 'gemm_sg' || variant === 'gemm_sg_f16') {
    // The weight as a transposed [Cin*K*K, Cout] matrix: f32 with 4 output channels per
    // invocation, or halves with 8 (then 8 pixels per workgroup for 3x3, measured best on lavapipe).
    const f16 = variant === 'gemm_sg_f16';
    const wk = packedWeight(prog, w, Cout, Cin * K * K, f16 ? 'f16' : 'f32');
    const cols = cdiv(Cout, f16 ? 8 : 4);
    const WORKGROUP = pickWorkgroup(prog.gpu);
    const groupsN = cdiv(cols, WORKGROUP);
    const RUN = f16 && K === 3 ? 8 : 16;
    const runsX = cdiv(W, RUN);
    splitBatch(prog, `conv2d ${label}`, B, residual ? [x, y, residual] : [x, y], opts, (n, [xs, ys, rs]) => {
      prog.dispatch({
        kernel: f16 ? 'conv2d_gemm_sg_f16' : 'conv2d_gemm_sg',
        defines: f16 ? { WORKGROUP, RUN } : { WORKGROUP },
        constants: { KSIZE: K },
        uniforms: { B: n, Cin, Cout, H, W, hasResidual: residual ? 1 : 0, [f16 ? 'Np8' : 'Cop4']: cols, groupsN, runsX, x_off: xs.off, r_off: rs?.off ?? 0, y_off: ys.off },
        bind: { x: xs.t, [f16 ? 'wh' : 'wt']: wk, bias, residual: rs?.t ?? wk, y: ys.t },
        groups: n * H * runsX * groupsN,
        cost: cost(n),
      });
    });
    return y;
  }
  if (variant === 'wg_tiled' || variant === 'wg_tiled_f16') {
    const type = variant === 'wg_tiled_f16' ? 'f16' : 'f32';
    splitBatch(prog, `conv2d ${label}`, B, residual ? [x, y, residual] : [x, y], opts, (n, [xs, ys, rs]) => {
      const TILE = wgTile(n * H * W, Cout);
      const tilesN = cdiv(Cout, TILE);
      prog.dispatch({
        kernel: 'conv2d_wg_tiled',
        defines: { ...arithmetic(type), TILE },
        constants: { KSIZE: K },
        uniforms: { B: n, Cin, Cout, H, W, hasResidual: residual ? 1 : 0, tilesN, x_off: xs.off, r_off: rs?.off ?? 0, y_off: ys.off },
        bind: { x: xs.t, w, bias, residual: rs?.t ?? w, y: ys.t },
        groups: cdiv(n * H * W, TILE) * tilesN,
        cost: cost(n),
      });
    });
    return y;
  }
  expect(variant === 'direct', () => `conv2d: no recording for variant '${variant}'`);
  const quadsX = cdiv(W, 4);
  const pixGroups = cdiv(H * quadsX, 64);
  const coBlocks = cdiv(Cout, 4);
  splitBatch(prog, `conv2d ${label}`, B, residual ? [x, y, residual] : [x, y], opts, (n, [xs, ys, rs]) => {
    prog.dispatch({
      kernel: 'conv2d',
      constants: { KSIZE: K },
      uniforms: { B: n, Cin, Cout, H, W, hasResidual: residual ? 1 : 0, quadsX, pixGroups, coBlocks, x_off: xs.off, r_off: rs?.off ?? 0, y_off: ys.off },
      bind: { x: xs.t, w, bias, residual: rs?.t ?? w, y: ys.t },
      groups: n * coBlocks * pixGroups,
      cost: cost(n),
    });
  });
  return y;
}

/**
 * A 1x1 conv as linear_kn_sg GEMMs on NCHW, one per image, in one dispatch per batch range:
 * y[b] [Cout, H*W] = w [Cout, Cin] @ x[b] [Cin, H*W] + bias (per row) + residual[b]. The weight
 * as loaded is the row operand (shared by the images), each image the column operand, so no
 * copy of either is made. H*W and Cin must be multiples of 4 (vec4 rows of both).
 */
function conv1x1Gemm(prog: Program, x: Tensor, w: Tensor, bias: Tensor, y: Tensor, label: string, residual: Tensor | undefined, opts: SplitOptions): void {
  const [B, Cin, H, W] = x.shape;
  const Cout = w.shape[0];
  const HW = H * W;
  splitBatch(prog, `conv2d ${label}`, B, residual ? [x, y, residual] : [x, y], opts, (n, [xs, ys, rs]) => {
    gemmKnSg(prog, {
      x: w,
      wt: xs.t,
      y: ys.t,
      M: Cout,
      N: HW,
      K: Cin,
      batches: n,
      sharedX: true,
      offsets: { wt: xs.off, y: ys.off, residual: rs?.off ?? 0 },
      flags: { hasBias: 2, hasResidual: residual ? 1 : 0 },
      bias,
      residual: rs?.t,
      cost: { flops: 2 * n * Cout * HW * Cin, bytes: 4 * (w.numel + n * (Cin + Cout * (residual ? 2 : 1)) * HW) },
    });
  });
}

