// Ops of the quantization bottleneck and of DualToken's attention projections, one function per
// kernel as in ops.ts: check shapes, allocate outputs (program activations), record the dispatch.
// The codeword search, which has variants, is an op module (src/ops/rq_search).
import type { Program } from './program.js';
import { Tensor, lastDim, shapeStr } from './tensor.js';
import { cdiv, expect } from './arith.js';

/**
 * z_q = sum_d codebook[c[d]] in depth order: the quantizer's output (bit for bit the official
 * running sum) and decoding from codes (RQBottleneck.embed_code, shared codebook).
 * codes [..., D] i32, codebook [K+1, E] -> [..., E]. The kernel cannot fail: codes outside
 * 0..K are clamped into it (validate codes on the host first); code K is the padding row, as
 * nn.Embedding returns it.
 */
export function rqEmbed(prog: Program, codes: Tensor, codebook: Tensor, label = 'rq.embed'): Tensor {
  expect(codes.dtype === 'i32', () => `rq_embed: codes must be i32, got ${codes.dtype}`);
  expect(codebook.shape.length === 2, () => `rq_embed ${codebook.label}: codebook ${shapeStr(codebook.shape)}`);
  const D = lastDim(codes);
  const [rows, E] = codebook.shape;
  const T = codes.numel / D;
  const zq = prog.alloc([...codes.shape.slice(0, -1), E], label);
  prog.dispatch({ kernel: 'rq_embed', uniforms: { T, D, E, rows }, bind: { codes, w: codebook, z_q: zq }, groups: cdiv(T * E, 256), cost: { bytes: 4 * (T * D + T * D * E + T * E) } });
  return zq;
}

/** torch.mean over the head axis.  x [..., H*D] (heads concatenated) -> [..., D] */
export function meanHeads(prog: Program, x: Tensor, H: number, label = 'mean_heads'): Tensor {
  const W = lastDim(x);
  expect(W % H === 0, () => `mean_heads: ${shapeStr(x.shape)} does not split into ${H} heads`);
  const D = W / H;
  const rows = x.numel / W;
  const y = prog.alloc([...x.shape.slice(0, -1), D], label);
  prog.dispatch({ kernel: 'mean_heads', uniforms: { rows, H, D }, bind: { x, y }, groups: cdiv(rows * D, 256), cost: { bytes: 4 * (x.numel + y.numel) } });
  return y;
}

/** Elementwise product a * b of two tensors of the same size. */
export function mul(prog: Program, a: Tensor, b: Tensor, label = 'mul'): Tensor {
  expect(a.numel === b.numel, () => `mul: ${shapeStr(a.shape)} * ${shapeStr(b.shape)}`);
  const y = prog.alloc(a.shape, label);
  prog.dispatch({ kernel: 'mul', uniforms: { n: a.numel }, bind: { a, b, y }, groups: cdiv(a.numel, 256), cost: { bytes: 12 * a.numel } });
  return y;
}
