// conv2d's Winograd variants for 3x3 convolutions (conv2d.ts records them when the variant
// choice says 'winograd' or 'winograd4'): F(2x2, 3x3) and F(4x4, 3x3) (Lavin & Gray 2016),
// the weight packed once into the Winograd domain, the input transformed per chunk of output tiles
// into a scratch activation, P batched GEMMs, and the output transform with bias and residual.
import { cdiv } from '../../core/arith.js';
import type { Program } from '../../core/program.js';
import { splitBatch, type SplitOptions } from '../../core/split.js';
import type { Tensor } from '../../core/tensor.js';
import { gemmKnSg } from '../linear/linear.js';
import { packedWeight } from '../packing.js';
import { WINOGRAD_POINTS } from './spec.js';

/** Tiles per invocation of the Winograd input and output transforms (their RUN placeholder). */
const WINO_RUN = 4;

/** Bytes of each of the two Winograd scratch buffers at most, by default (Conv2dOptions.winogradScratchBytes). */
const WINO_SCRATCH_BYTES = 32 * 2 ** 20;

/** conv2d's Winograd variants. */
export type WinogradVariant = 'winograd' | 'winograd4';

export function isWinograd(variant: string): variant is WinogradVariant {
  return Object.hasOwn(WINOGRAD, variant);
}

/** A Winograd algorithm F(m x m, 3 x 3): its output tile side (the kernels' TILE), transform points ((m + 2)^2), weight layout. */
interface Winograd {
  m: number;
  points: number;
  pack: 'wino' | 'wino4';
}

const WINOGRAD: Record<WinogradVariant, Winograd> = {
  winograd: { m: 2, points: WINOGRAD_POINTS.winograd, pack: 'wino' },
  winograd4: { m: 4, points: WINOGRAD_POINTS.winograd4, pack: 'wino4' },
};

/**
 * conv2d's Winograd variants, 3x3 only (Lavin & Gray, 2016): F(2x2, 3x3) does 16 multiply-adds
 * per 2x2 output tile and channel pair instead of 36, F(4x4, 3x3) 36 per 4x4 tile instead of 144.
 * With P = (m + 2)^2 transform points, per chunk of tiles:
 *   x [B,Cin,H,W] -> v [P, Tc, Cin4]       (conv_wino_input: B^T d B per (m+2)^2 input patch)
 *   m[p] = v[p] @ u[p]  -> m [P, Tc, Cout] (P GEMMs in one linear_kn_sg dispatch; u = G g G^T [P, Cin4, Cout4], packed once)
 *   m -> y [B,Cout,H,W] + bias + residual  (conv_wino_output: A^T m A per tile)
 * in chunks of as many tiles as the scratch budget (opts.winogradScratchBytes) allows.
 */
export function winograd3x3(
  prog: Program,
  variant: WinogradVariant,
  x: Tensor,
  w: Tensor,
  bias: Tensor,
  y: Tensor,
  label: string,
  residual: Tensor | undefined,
  opts: SplitOptions & { winogradScratchBytes?: number },
): void {
  const f = WINOGRAD[variant];
  const [B, Cin, H, W] = x.shape;
  const Cout = w.shape[0];
  const scratch = Math.min(opts.winogradScratchBytes ?? WINO_SCRATCH_BYTES, prog.gpu.limits.maxStorageBufferBindingSize);
  const perTile = f.points * 4 * Math.max(cdiv(Cin, 4) * 4, Cout);
  if (perTile > scratch) throw new Error(`conv2d ${label}: one Winograd tile needs ${perTile} bytes of scratch per buffer; the limit is ${scratch} bytes`);
  const chunk = Math.floor(scratch / perTile);
  const u = packedWeight(prog, w, Cout, Cin, f.pack);
  const Cin4 = cdiv(Cin, 4) * 4;
  const TH = cdiv(H, f.m);
  const TW = cdiv(W, f.m);
  const P = f.points;
  splitBatch(prog, `conv2d ${label}`, B, residual ? [x, y, residual] : [x, y], opts, (n, [xs, ys, rs]) => {
    const tiles = n * TH * TW;
    const Tc = Math.min(tiles, chunk);
    const v = prog.alloc([P, Tc, Cin4], `${label}.winograd_in`);
    const m = prog.alloc([P, Tc, Cout], `${label}.winograd_out`);
    for (let t0 = 0; t0 < tiles; t0 += Tc) {
      const tc = Math.min(Tc, tiles - t0);
      prog.dispatch({
        kernel: 'conv_wino_input',
        defines: { TILE: f.m, RUN: WINO_RUN },
        uniforms: { Cin, Cin4, H, W, TH, TW, t0, Tc: tc, x_off: xs.off },
        bind: { x: xs.t, v },
        groups: cdiv(cdiv(tc, WINO_RUN) * Cin4, 64),
        cost: { bytes: 4 * (n * Cin * H * W * (tc / tiles) + P * tc * Cin4) },
      });
      // The GEMMs do P * 2 * Cin4 * Cout FLOPs per tile; they stand for the chunk's share of the direct conv's.
      gemmKnSg(prog, { x: v, wt: u, y: m, M: tc, N: Cout, K: Cin4, batches: P, cost: { flops: 2 * P * tc * Cin4 * Cout, modelFlops: (18 * Cin * Cout * n * H * W * tc) / tiles } });
      prog.dispatch({
        kernel: 'conv_wino_output',
        defines: { TILE: f.m, RUN: WINO_RUN },
        uniforms: { hasResidual: residual ? 1 : 0, Cout, H, W, TH, TW, t0, Tc: tc, r_off: rs?.off ?? 0, y_off: ys.off },
        bind: { m, bias, residual: rs?.t ?? bias, y: ys.t },
        groups: cdiv(cdiv(tc, WINO_RUN) * Cout, 64),
        cost: { bytes: 4 * (P * tc * Cout + f.m * f.m * tc * Cout * (residual ? 2 : 1)) },
      });
    }
  });
}
