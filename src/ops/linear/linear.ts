// linear: y = act(x @ w^T + bias) + residual (torch.nn.Linear [+ GELU tanh] [+ residual]), in
// the variant the adapter's choice gives (spec.ts), and gemmKnSg, the subgroup GEMM other ops
// reuse (conv2d's 1x1 and Winograd variants, the decoder's spatial attention).
import { cdiv, expect } from '../../core/arith.js';
import type { Defines } from '../../core/kernels.js';
import type { Cost, Program } from '../../core/program.js';
import { splitRows, type SplitOptions } from '../../core/split.js';
import { Tensor, lastDim, shapeStr } from '../../core/tensor.js';
import { pickWorkgroup, variantsOf } from '../choice.js';
import { packedWeight } from '../packing.js';

/** The epilogue flags of the linear kernels (uniforms: one pipeline serves every combination). */
export interface LinearFlags {
  /** 1: a bias per column (output feature), 2: one per row; 0: none. */
  hasBias: number;
  hasResidual: number;
  /** 1: GELU (tanh approximation) before the residual. */
  act: number;
}

export interface LinearOptions extends SplitOptions {
  bias?: Tensor;
  residual?: Tensor;
  act?: 'none' | 'gelu_tanh';
  label?: string;
}

/**
 * The placeholders of the kernels that compute in f32 or f16: T, the directive f16 needs, and
 * whether each step's sums go into f32 accumulators (STEP_SUMS, with halves).
 */
export function arithmetic(type: 'f32' | 'f16'): Defines {
  const f16 = type === 'f16';
  return { T: type, ENABLE: f16 ? 'enable f16;' : '', STEP_SUMS: f16 ? 1 : 0 };
}

/**
 * The output tile side of the wg_tiled GEMMs for a rows x cols output: 128 (8x8 per invocation
 * in 16x16 workgroups) when that still makes 64 workgroups or more, else 64 (8x8 workgroups), so
 * that a small GEMM still spreads over a GPU's cores. A rule of thumb, not yet timed on a GPU.
 */
export function wgTile(rows: number, cols: number): number {
  return cdiv(rows, 128) * cdiv(cols, 128) >= 64 ? 128 : 64;
}

/**
 * Rows per workgroup of the linear_kn* kernels: 16 (best on lavapipe) whatever M, so that each
 * kernel compiles once: a short input (the pooling head's probe, M = 1) repeats its last row in
 * the idle ones, which costs far less than a second pipeline's compile (see bench/README.md).
 */
const KN_ROWS = 16;

/**
 * y = act(x @ w^T + bias) + residual.  x [..., K], w [N, K] -> y [..., N]   (torch.nn.Linear)
 * The kernel is the variant chosen for this adapter (spec.ts); the kn variants read the weight
 * transposed, packed once per weight on first use (packedWeight) and kept with it. Inputs and
 * outputs over the binding limit are done in ranges of rows (split.ts).
 */
export function linear(prog: Program, x: Tensor, w: Tensor, opts: LinearOptions = {}): Tensor {
  const K = lastDim(x);
  const N = w.shape[0];
  const wK = w.numel / N; // conv weights [N, Cin, kh, kw] act as [N, Cin*kh*kw]
  expect(wK === K, () => `linear ${w.label}: input ${shapeStr(x.shape)} has ${K} features, weight ${shapeStr(w.shape)} takes ${wK}`);
  const M = x.numel / K;
  const outShape = [...x.shape.slice(0, -1), N];
  if (opts.bias) expect(opts.bias.numel === N, () => `linear ${w.label}: bias ${shapeStr(opts.bias!.shape)} for ${N} outputs`);
  if (opts.residual) expect(opts.residual.numel === M * N, () => `linear ${w.label}: residual ${shapeStr(opts.residual!.shape)} for output ${shapeStr(outShape)}`);
  const y = prog.alloc(outShape, opts.label ?? w.label);
  const bound = opts.residual ? [x, y, opts.residual] : [x, y];
  splitRows(prog, `linear ${opts.label ?? w.label}`, M, bound, opts, (rows, [xs, ys, rs]) => linearRows(prog, xs, w, ys, rows, { ...opts, residual: rs }));
  return y;
}

/** linear() on `M` rows into y [M, N], recorded as one dispatch of the chosen variant. */
function linearRows(prog: Program, x: Tensor, w: Tensor, y: Tensor, M: number, opts: LinearOptions): void {
  const K = lastDim(x);
  const N = w.shape[0];
  const flags = { hasBias: opts.bias ? 1 : 0, hasResidual: opts.residual ? 1 : 0, act: opts.act === 'gelu_tanh' ? 1 : 0 };
  // Bindings a variant does not read get any buffer: the weight in the layout the variant reads
  // (the original is freed once only packed layouts are used: Weights.releasePackedOriginals).
  const bind = (wv: Tensor) => ({ x, bias: opts.bias ?? wv, residual: opts.residual ?? wv, y });
  const cost = { flops: 2 * M * N * K, bytes: 4 * (M * K + N * K + M * N * (opts.residual ? 2 : 1)) };
  const variant = variantsOf(prog.kernels).choose('linear', { M, K }, () => `linear ${opts.label ?? w.label} [${M}, ${K}] x ${shapeStr(w.shape)}`);
  if (variant === 'kn_sg_f16') {
    const wh = packedWeight(prog, w, N, K, 'f16');
    const ROWS = KN_ROWS;
    const Np8 = cdiv(N, 8);
    const WORKGROUP = pickWorkgroup(prog.gpu);
    const groupsN = cdiv(Np8, WORKGROUP);
    prog.dispatch({
      kernel: 'linear_kn_sg_f16',
      defines: { ROWS, WORKGROUP },
      uniforms: { M, N, K4: K / 4, Np8, groupsN, ...flags },
      bind: { ...bind(wh), wh },
      groups: groupsN * cdiv(M, ROWS),
      cost,
    });
  } else if (variant === 'kn_sg') {
    const wt = packedWeight(prog, w, N, K);
    gemmKnSg(prog, { x, wt, y, M, N, K, flags, bias: opts.bias, residual: opts.residual, cost });
  } else if (variant === 'kn') {
    const wt = packedWeight(prog, w, N, K);
    const ROWS = KN_ROWS;
    const Np4 = cdiv(N, 4);
    const groupsN = cdiv(Np4, 64);
    prog.dispatch({ kernel: 'linear_kn', defines: { ROWS }, uniforms: { M, N, K4: K / 4, Np4, groupsN, ...flags }, bind: { ...bind(wt), wt }, groups: groupsN * cdiv(M, ROWS), cost });
  } else if (variant === 'wg_tiled' || variant === 'wg_tiled_f16') {
    const TILE = wgTile(M, N);
    const tilesN = cdiv(N, TILE);
    prog.dispatch({
      kernel: 'linear_wg_tiled',
      defines: { ...arithmetic(variant === 'wg_tiled_f16' ? 'f16' : 'f32'), TILE },
      uniforms: { M, N, K, tilesN, ...flags },
      bind: { ...bind(w), w },
      groups: cdiv(M, TILE) * tilesN,
      cost,
    });
  } else {
    expect(variant === 'tiled', () => `linear: no recording for variant '${variant}'`);
    const tilesN = cdiv(N, 4);
    prog.dispatch({ kernel: 'linear', uniforms: { M, N, K, tilesN, ...flags }, bind: { ...bind(w), w }, groups: cdiv(cdiv(M, 4) * tilesN, 64), cost });
  }
}

export interface GemmKnSgArgs {
  /** [batches, M, K] (K % 4 == 0), read as vec4 rows. */
  x: Tensor;
  /** [batches, K, ceil(N/4)*4]: packedWeight's f32 layout, one matrix per batch item. */
  wt: Tensor;
  /** [batches, M, N]. */
  y: Tensor;
  M: number;
  N: number;
  K: number;
  /** Independent GEMMs in one dispatch (default 1); the residual is batched like y, the bias is not. */
  batches?: number;
  /** Whether x is one [M, K] matrix for every batch item (default: one per item). */
  sharedX?: boolean;
  /** Element offsets of batch item 0 inside the bound x, wt (multiples of 4), y and residual (default 0). */
  offsets?: { x?: number; wt?: number; y?: number; residual?: number };
  /** The kernel's flags (uniforms): hasBias (1 per column, 2 per row), hasResidual, act (1: GELU tanh); each 0 when not given. */
  flags?: Partial<LinearFlags>;
  bias?: Tensor;
  residual?: Tensor;
  cost?: Cost;
}

/**
 * y[b] = act(x[b] @ wt[b] + bias) + residual[b] through linear_kn_sg: linear's kn_sg variant, the
 * batched GEMM of the Winograd convolution and the 1x1 convolution on NCHW images (conv2d/), and
 * the decoder's spatial attention (core/conv-ops.ts).
 */
export function gemmKnSg(prog: Program, a: GemmKnSgArgs): void {
  const { M, N, K } = a;
  const batches = a.batches ?? 1;
  expect(K % 4 === 0, () => `gemm ${a.wt.label}: K = ${K} is not a multiple of 4`);
  const ROWS = KN_ROWS;
  const Np4 = cdiv(N, 4);
  const WORKGROUP = pickWorkgroup(prog.gpu);
  const groupsN = cdiv(Np4, WORKGROUP);
  const batchGroups = groupsN * cdiv(M, ROWS);
  const o = a.offsets ?? {};
  expect((o.x ?? 0) % 4 === 0 && (o.wt ?? 0) % 4 === 0, () => `gemm ${a.wt.label}: x / wt offsets ${o.x} / ${o.wt} are not multiples of 4`);
  prog.dispatch({
    kernel: 'linear_kn_sg',
    defines: { ROWS, WORKGROUP },
    uniforms: {
      hasBias: 0, hasResidual: 0, act: 0, ...a.flags,
      M, N, K4: K / 4, Np4, groupsN, batches, batchGroups,
      xBatch4: a.sharedX ? 0 : (M * K) / 4, wBatch4: K * Np4, yBatch: M * N,
      xOff4: (o.x ?? 0) / 4, wOff4: (o.wt ?? 0) / 4, yOff: o.y ?? 0, rOff: o.residual ?? 0,
    },
    bind: { x: a.x, wt: a.wt, bias: a.bias ?? a.wt, residual: a.residual ?? a.wt, y: a.y },
    groups: batches * batchGroups,
    cost: a.cost ?? { flops: 2 * batches * M * N * K },
  });
}

