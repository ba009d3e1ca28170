// The NCHW kernels of the pixel decoder without variants, one function per op: checks shapes,
// allocates the output (a program activation) and records the dispatches. conv2d, group_norm and
// the attention's row softmax, which have variants, are op modules (src/ops/conv2d,
// src/ops/group_norm, src/ops/softmax).
//
// Binding limits: every op here binds its activations in batch ranges that fit (split.ts
// splitBatch); one batch item over the limit is refused with an error naming the tensor.
import { gemmKnSg } from '../ops/linear/linear.js';
import { softmaxRows } from '../ops/softmax/softmax.js';
import type { Program } from './program.js';
import { splitBatch, type Slice, type SplitOptions } from './split.js';
import { Tensor, nchw, sameShape, shapeStr } from './tensor.js';
import { cdiv, expect } from './arith.js';

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
