// One function per kernel: checks shapes, allocates the output from the program's pool and
// records the dispatch. Shapes in comments are the tensors' logical shapes.
import type { Program } from './program.js';
import { Tensor, shapeStr } from './tensor.js';

const cdiv = (a: number, b: number) => Math.ceil(a / b);

function lastDim(t: Tensor): number {
  return t.shape[t.shape.length - 1];
}

function expect(cond: boolean, msg: () => string): void {
  if (!cond) throw new Error(msg());
}

export interface LinearOptions {
  bias?: Tensor;
  residual?: Tensor;
  act?: 'none' | 'gelu_tanh';
  label?: string;
}

/** y = act(x @ w^T + bias) + residual.  x [..., K], w [N, K] -> y [..., N]   (torch.nn.Linear) */
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
  const tilesN = cdiv(N, 4);
  prog.dispatch({
    kernel: 'linear',
    constants: { HAS_BIAS: opts.bias ? 1 : 0, HAS_RESIDUAL: opts.residual ? 1 : 0, ACT: opts.act === 'gelu_tanh' ? 1 : 0 },
    uniforms: { M, N, K, tilesN },
    bind: { x, w, bias: opts.bias ?? w, residual: opts.residual ?? w, y },
    groups: cdiv(cdiv(M, 4) * tilesN, 64),
    cost: { flops: 2 * M * N * K, bytes: 4 * (M * K + N * K + M * N * (opts.residual ? 2 : 1)) },
  });
  return y;
}

/** torch.nn.LayerNorm over the last dim.  x [..., C] -> [..., C] */
export function layerNorm(prog: Program, x: Tensor, gamma: Tensor, beta: Tensor, eps: number, label = gamma.label): Tensor {
  const C = lastDim(x);
  expect(gamma.numel === C && beta.numel === C, () => `layer_norm ${gamma.label}: weight ${shapeStr(gamma.shape)} for input ${shapeStr(x.shape)}`);
  const rows = x.numel / C;
  const y = prog.alloc(x.shape, label);
  prog.dispatch({ kernel: 'layernorm', uniforms: { rows, C, eps }, bind: { x, gamma, beta, y }, groups: cdiv(rows, 64), cost: { bytes: 8 * x.numel } });
  return y;
}

/** y = a + alpha * b, b broadcast over a's leading dims (b.numel divides a.numel). */
export function addScaled(prog: Program, a: Tensor, b: Tensor, alpha = 1, label = 'add'): Tensor {
  expect(a.numel % b.numel === 0, () => `add: ${shapeStr(b.shape)} does not broadcast to ${shapeStr(a.shape)}`);
  const y = prog.alloc(a.shape, label);
  prog.dispatch({ kernel: 'add_scaled', uniforms: { n: a.numel, nb: b.numel, alpha }, bind: { a, b, y }, groups: cdiv(a.numel, 256), cost: { bytes: 4 * (2 * a.numel + b.numel) } });
  return y;
}

/** A strided view of heads inside a [B, L, rowStride] buffer: element d of head h at off + b*bs + i*rs + h*D + d. */
export interface HeadView {
  t: Tensor;
  off: number;
  bs: number;
  rs: number;
}

/** Rows [B, L, W] read as heads starting at column `col`. */
export function heads(t: Tensor, col = 0, batchStride?: number): HeadView {
  const W = lastDim(t);
  const L = t.shape[t.shape.length - 2];
  return { t, off: col, bs: batchStride ?? L * W, rs: W };
}

export interface AttentionArgs {
  B: number;
  H: number;
  D: number;
  Lq: number;
  Lk: number;
  q: HeadView;
  k: HeadView;
  v: HeadView;
  causal?: boolean;
  scale?: number;
  label?: string;
}

/** softmax(q k^T * scale) v per batch item and head -> [B, Lq, H*D] (heads concatenated). */
export function attention(prog: Program, a: AttentionArgs): Tensor {
  const o = prog.alloc([a.B, a.Lq, a.H * a.D], a.label ?? 'attention');
  const ov = heads(o);
  prog.dispatch({
    kernel: 'attention',
    defines: { HEAD_DIM: a.D },
    constants: { CAUSAL: a.causal ? 1 : 0 },
    uniforms: {
      B: a.B, H: a.H, Lq: a.Lq, Lk: a.Lk, scale: a.scale ?? 1 / Math.sqrt(a.D),
      q_off: a.q.off, q_bs: a.q.bs, q_rs: a.q.rs,
      k_off: a.k.off, k_bs: a.k.bs, k_rs: a.k.rs,
      v_off: a.v.off, v_bs: a.v.bs, v_rs: a.v.rs,
      o_off: ov.off, o_bs: ov.bs, o_rs: ov.rs,
    },
    bind: { q: a.q.t, k: a.k.t, v: a.v.t, o },
    groups: cdiv(a.B * a.H * a.Lq, 64),
    // Causal attention does about half the work; counted as full (the conventional figure).
    cost: { flops: 4 * a.B * a.H * a.Lq * a.Lk * a.D },
  });
  return o;
}

/** Patches of a stride = kernel = P conv as matrix rows.  pixels [B, Cin, S, S] -> [B, G*G, Cin*P*P] */
export function patchIm2col(prog: Program, pixels: Tensor, P: number): Tensor {
  const [B, Cin, S, S2] = pixels.shape;
  expect(pixels.shape.length === 4 && S === S2, () => `patch embedding: pixels must be [B, C, S, S], got ${shapeStr(pixels.shape)}`);
  const G = Math.floor(S / P);
  const cols = prog.alloc([B, G * G, Cin * P * P], 'patches');
  prog.dispatch({ kernel: 'patch_im2col', uniforms: { B, Cin, S, P, G }, bind: { pixels, cols }, groups: cdiv(cols.numel, 256), cost: { bytes: 8 * cols.numel } });
  return cols;
}
