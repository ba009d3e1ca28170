// The NCHW kernels of the pixel decoder, one function per op as in ops.ts: checks shapes,
// allocates the output (a program activation) and records the dispatches.
//
// Binding limits: every op here binds its activations in batch ranges that fit (split.ts
// splitBatch); one batch item over the limit is refused with an error naming the tensor.
// The Winograd variants of conv2d: conv-winograd.ts.
import { isWinograd, winograd3x3, winogradThatFits } from './conv-winograd.js';
import type { Program } from './program.js';
import { arithmetic, gemmKnSg, packedWeight, wgTile } from './ops.js';
import { splitBatch, type Slice, type SplitOptions } from './split.js';
import { Tensor, shapeStr } from './tensor.js';
import { pickWorkgroup, shapeClass, subgroupsOf8, variantsOf } from './variants.js';
import { cdiv, expect } from './arith.js';

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export { winogradThatFits } from './conv-winograd.js';

function nchw(x: Tensor, op: string): [number, number, number, number] {
  expect(x.shape.length === 4, () => `${op}: input must be NCHW [B, C, H, W], got ${shapeStr(x.shape)}`);
  return x.shape as [number, number, number, number];
}

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
 * The kernel is the variant chosen for this adapter (variants.ts); gemm_sg reads the weight as a
 * transposed [Cin*k*k, Cout] matrix, packed once per weight on first use (ops.packedWeight),
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
  let variant = variantsOf(prog.kernels).choose('conv2d', shapeClass('conv2d', { K }));
  variant = winogradThatFits(variant, Cin, Cout, prog.gpu.limits.maxStorageBufferBindingSize);
  if (isWinograd(variant)) {
    // 3x3 only: 1x1 convs are GEMMs already and the choice delegates them (variants.ts).
    winograd3x3(prog, variant, x, w, bias, y, label, residual, opts);
    return y;
  }
  if (variant === 'gemm_kn') {
    if (K === 1 && (H * W) % 4 === 0 && Cin % 4 === 0) {
      conv1x1Gemm(prog, x, w, bias, y, label, residual, opts);
      return y;
    }
    variant = 'gemm_sg'; // other shapes: the implicit GEMM
  }
  if (variant.startsWith('gemm_sg') && !subgroupsOf8(prog.gpu)) variant = 'direct';
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

export interface GroupNormOptions extends SplitOptions {
  groups?: number;
  /** Apply SiLU to the normalised output (the decoder's GN -> nonlinearity pairs). */
  silu?: boolean;
  label?: string;
}

/** Values per groupnorm_stats invocation: enough chunks for parallelism, few enough to merge quickly. */
const GN_CHUNK = 512;

/**
 * torch.nn.GroupNorm(groups, C, eps, affine) [+ F.silu].  x [B,C,H,W] -> [B,C,H,W]
 * Variants (variants.ts): chunked (any size), vec4 (H*W a multiple of 4, else the call uses chunked).
 */
export function groupNorm(prog: Program, x: Tensor, gamma: Tensor, beta: Tensor, eps: number, opts: GroupNormOptions = {}): Tensor {
  const label = opts.label ?? gamma.label;
  const [B, C, H, W] = nchw(x, `group_norm ${label}`);
  const G = opts.groups ?? 32;
  expect(C % G === 0, () => `group_norm ${label}: ${C} channels are not divisible into ${G} groups`);
  expect(gamma.numel === C && beta.numel === C, () => `group_norm ${label}: weight ${shapeStr(gamma.shape)} / bias ${shapeStr(beta.shape)} for ${C} channels`);
  const HW = H * W;
  const S = (C / G) * HW;
  const chunks = cdiv(S, GN_CHUNK);
  const partials = prog.alloc([B * G, chunks, 2], `${label}.partials`);
  const stats = prog.alloc([B * G, 2], `${label}.stats`);
  const y = prog.alloc(x.shape, label);
  let variant = variantsOf(prog.kernels).choose('group_norm', shapeClass('group_norm', {}));
  if (variant === 'vec4' && (HW % 4 !== 0 || x.offset % 16 !== 0)) variant = 'chunked'; // rows and batch slices must start on vec4 boundaries
  const quads = cdiv(HW, 4);
  const blocks = cdiv(quads, 4);
  splitBatch(prog, `group_norm ${label}`, B, [x, partials, stats, y], opts, (n, [xs, ps, ss, ys]) => {
    prog.dispatch({
      kernel: variant === 'vec4' ? 'groupnorm_stats_vec4' : 'groupnorm_stats',
      uniforms: { B: n, G, S, chunk: GN_CHUNK, chunks, x_off: xs.off, part_off: ps.off },
      bind: { x: xs.t, partials: ps.t },
      groups: cdiv(n * G * chunks, 64),
      cost: { bytes: 4 * n * C * HW },
    });
    prog.dispatch({
      kernel: 'groupnorm_stats_combine',
      uniforms: { BG: n * G, S, chunk: GN_CHUNK, chunks, eps, part_off: ps.off, stats_off: ss.off },
      bind: { partials: ps.t, stats: ss.t },
      groups: cdiv(n * G, 64),
      cost: { bytes: 4 * n * G * (2 * chunks + 2) },
    });
    if (variant === 'vec4') {
      prog.dispatch({
        kernel: 'groupnorm_vec4',
        uniforms: { silu: opts.silu ? 1 : 0, B: n, C, G, HW4: quads, blocks, x_off: xs.off, stats_off: ss.off, y_off: ys.off },
        bind: { x: xs.t, stats: ss.t, gamma, beta, y: ys.t },
        groups: cdiv(n * C * blocks, 64),
        cost: { bytes: 8 * n * C * HW },
      });
    } else {
      prog.dispatch({
        kernel: 'groupnorm',
        uniforms: { silu: opts.silu ? 1 : 0, B: n, C, G, HW, quads, x_off: xs.off, stats_off: ss.off, y_off: ys.off },
        bind: { x: xs.t, stats: ss.t, gamma, beta, y: ys.t },
        groups: cdiv(n * C * quads, 64),
        cost: { bytes: 8 * n * C * HW },
      });
    }
  });
  return y;
}

/** F.interpolate(x, scale_factor=2, mode='nearest').  x [B,C,H,W] -> [B,C,2H,2W] */
export function upsampleNearest2x(prog: Program, x: Tensor, opts: SplitOptions & { label?: string } = {}): Tensor {
  const label = opts.label ?? 'upsample';
  const [B, C, H, W] = nchw(x, `upsample_nearest2x ${label}`);
  const y = prog.alloc([B, C, 2 * H, 2 * W], label);
  splitBatch(prog, `upsample_nearest2x ${label}`, B, [x, y], opts, (n, [xs, ys]) => {
    const rows = n * C * H;
    const RUN = 4; // inputs per invocation
    const runsX = cdiv(W, RUN);
    prog.dispatch({ kernel: 'upsample_nearest2x', defines: { RUN }, uniforms: { rows, W, runsX, x_off: xs.off, y_off: ys.off }, bind: { x: xs.t, y: ys.t }, groups: cdiv(rows * runsX, 64), cost: { bytes: 20 * rows * W } });
  });
  return y;
}

/** F.interpolate(x, size=(OH, OW), mode='bilinear', align_corners=False), no antialias.  x [B,C,H,W] -> [B,C,OH,OW] */
export function resizeBilinear(prog: Program, x: Tensor, size: [number, number], opts: SplitOptions & { label?: string } = {}): Tensor {
  const label = opts.label ?? 'resize';
  const [B, C, H, W] = nchw(x, `resize_bilinear ${label}`);
  const [OH, OW] = size;
  expect(Number.isInteger(OH) && Number.isInteger(OW) && OH > 0 && OW > 0, () => `resize_bilinear ${label}: bad output size [${size}]`);
  const y = prog.alloc([B, C, OH, OW], label);
  splitBatch(prog, `resize_bilinear ${label}`, B, [x, y], opts, (n, [xs, ys]) => {
    const count = n * C * OH * OW;
    prog.dispatch({
      kernel: 'resize_bilinear',
      uniforms: { n: count, H, W, OH, OW, scaleH: H / OH, scaleW: W / OW, x_off: xs.off, y_off: ys.off },
      bind: { x: xs.t, y: ys.t },
      groups: cdiv(count, 256),
      cost: { bytes: 4 * (count + n * C * H * W) },
    });
  });
  return y;
}

/** Tokens in raster order to NCHW: x.reshape(B, h, w, C).permute(0, 3, 1, 2).  x [B,L,C] -> [B,C,h,w] */
export function tokensToNchw(prog: Program, x: Tensor, h: number, w: number, opts: SplitOptions & { label?: string } = {}): Tensor {
  const label = opts.label ?? 'tokens_to_nchw';
  const [B, L, C] = x.shape;
  expect(x.shape.length === 3 && L === h * w, () => `tokens_to_nchw ${label}: ${shapeStr(x.shape)} is not [B, ${h}*${w}, C]`);
  const y = prog.alloc([B, C, h, w], label);
  splitBatch(prog, `tokens_to_nchw ${label}`, B, [x, y], opts, (n, [xs, ys]) => transposeItems(prog, xs, ys, n, L, C));
  return y;
}

/** y[b] = x[b]^T for n matrices [R, C] -> [C, R] (the tokens_to_nchw kernel). */
function transposeItems(prog: Program, x: Slice, y: Slice, n: number, R: number, C: number): void {
  const count = n * R * C;
  prog.dispatch({ kernel: 'tokens_to_nchw', uniforms: { n: count, L: R, C, x_off: x.off, y_off: y.off }, bind: { x: x.t, y: y.t }, groups: cdiv(count, 256), cost: { bytes: 8 * count } });
}

/**
 * The attention of the VQGAN AttnBlock: one head over the N = H*W positions with C channels,
 * out[b, :, i] = sum_j softmax_j(q[b, :, i] . k[b, :, j] * C^-0.5) v[b, :, j].
 * Three passes through a [B, N, N] score matrix (scores, row softmax, weighted sum), so any C
 * works (no per-invocation accumulator of C values); the matrix of one image (N*N*4 bytes) must
 * fit one binding: N <= 5792 on a 128 MiB adapter (the decoder attends at 24x24 or 16x16).
 * With subgroups and N, C multiples of 4 the scores and the weighted sum are linear_kn_sg GEMMs
 * on transposed copies (spatialAttentionGemm), else dedicated kernels.
 * q, k, v [B,C,H,W] -> [B,C,H,W]
 */
export function spatialAttention(prog: Program, q: Tensor, k: Tensor, v: Tensor, opts: SplitOptions & { label?: string } = {}): Tensor {
  const label = opts.label ?? 'spatial_attention';
  const [B, C, H, W] = nchw(q, `spatial_attention ${label}`);
  expect(sameShape(k.shape, q.shape) && sameShape(v.shape, q.shape), () => `spatial_attention ${label}: q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)} differ`);
  const N = H * W;
  const s = prog.alloc([B, N, N], `${label}.scores`);
  const a = prog.alloc([B, N, N], `${label}.weights`);
  const o = prog.alloc(q.shape, label);
  const quads = cdiv(N, 4); // position quads: 4 query rows (scores) or 4 query positions (output) per invocation
  const quadGroups = cdiv(quads, 64);
  const chBlocks = cdiv(C, 4);
  const gemm = prog.gpu.has('subgroups') && N % 4 === 0 && C % 4 === 0;
  splitBatch(prog, `spatial_attention ${label}`, B, [q, k, v, s, a, o], opts, (n, [qs, ks, vs, ss, as, os]) => {
    if (gemm) {
      spatialAttentionGemm(prog, n, C, N, qs, ks, vs, ss, as, os, label);
      return;
    }
    prog.dispatch({
      kernel: 'spatial_attention_scores',
      uniforms: { B: n, C, N, quads, colGroups: quadGroups, rowBlocks: quads, scale: C ** -0.5, q_off: qs.off, k_off: ks.off, s_off: ss.off },
      bind: { q: qs.t, k: ks.t, s: ss.t },
      groups: n * quads * quadGroups,
      cost: { flops: 2 * n * N * N * C },
    });
    softmaxRows(prog, ss, as, n * N, N, 1);
    prog.dispatch({
      kernel: 'spatial_attention_out',
      uniforms: { B: n, C, N, quads, posGroups: quadGroups, chBlocks, v_off: vs.off, a_off: as.off, o_off: os.off },
      bind: { v: vs.t, a: as.t, o: os.t },
      groups: n * chBlocks * quadGroups,
      cost: { flops: 2 * n * C * N * N },
    });
  });
  return o;
}

/** a = softmax(scale * s) over each of `rows` rows of N scores. */
function softmaxRows(prog: Program, s: Slice, a: Slice, rows: number, N: number, scale: number): void {
  prog.dispatch({ kernel: 'spatial_attention_softmax', uniforms: { rows, N, s_off: s.off, a_off: a.off, scale }, bind: { s: s.t, a: a.t }, groups: cdiv(rows, 64), cost: { bytes: 8 * rows * N } });
}

/**
 * spatialAttention's passes for n images as GEMMs: s = q^T k (q transposed to [N, C] first),
 * a = softmax(s * C^-0.5) per row, o = v a^T (a transposed to [N_j, N_i] first), each image's
 * matrices at its slice's offsets.
 */
function spatialAttentionGemm(prog: Program, n: number, C: number, N: number, q: Slice, k: Slice, v: Slice, s: Slice, a: Slice, o: Slice, label: string): void {
  const qt = prog.alloc([n, N, C], `${label}.q_t`);
  transposeItems(prog, q, { t: qt, off: 0 }, n, C, N);
  gemmKnSg(prog, { x: qt, wt: k.t, y: s.t, M: N, N, K: C, batches: n, offsets: { wt: k.off, y: s.off } });
  softmaxRows(prog, s, a, n * N, N, C ** -0.5);
  const at = prog.alloc([n, N, N], `${label}.weights_t`);
  transposeItems(prog, a, { t: at, off: 0 }, n, N, N);
  gemmKnSg(prog, { x: v.t, wt: at, y: o.t, M: C, N, K: N, batches: n, offsets: { x: v.off, y: o.off } });
}
