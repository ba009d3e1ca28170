// Ops of the quantization bottleneck and of DualToken's attention projections, one function per
// kernel as in ops.ts: check shapes, allocate outputs from the program's pool, record the dispatch.
import type { Program } from './program.js';
import { Tensor, shapeStr } from './tensor.js';

const cdiv = (a: number, b: number) => Math.ceil(a / b);

function expect(cond: boolean, msg: () => string): void {
  if (!cond) throw new Error(msg());
}

export interface RqSearchResult {
  /** [..., D] i32 codes, the token dims of x first (= [B, h, w, D] for raster tokens). */
  codes: Tensor;
  /** [..., E] sum of the chosen codewords. */
  zq: Tensor;
  /** [..., D] second-best minus best squared distance of each selection. */
  margin: Tensor;
  /** [..., D, E] the residual fed to each depth. */
  residual: Tensor;
}

/**
 * Residual quantization with one codebook shared by all D depths (RQBottleneck.quantize).
 * x [..., E], codebook [K+1, E] (last row = padding, never chosen), normSq [K] = |codebook_k|^2.
 */
export function rqSearch(prog: Program, x: Tensor, codebook: Tensor, normSq: Tensor, depth: number, label = 'rq'): RqSearchResult {
  const E = x.shape[x.shape.length - 1];
  const K = codebook.shape[0] - 1;
  expect(codebook.shape.length === 2 && codebook.shape[1] === E && K >= 1, () => `rq_search ${codebook.label}: codebook ${shapeStr(codebook.shape)} for tokens ${shapeStr(x.shape)}`);
  expect(normSq.numel === K, () => `rq_search ${codebook.label}: norms ${shapeStr(normSq.shape)} for ${K} codewords`);
  expect(Number.isInteger(depth) && depth >= 1, () => `rq_search ${codebook.label}: depth ${depth}`);
  const lead = x.shape.slice(0, -1);
  const T = x.numel / E;
  const codes = prog.alloc([...lead, depth], `${label}.codes`, 'i32');
  const zq = prog.alloc(x.shape, `${label}.z_q`);
  const margin = prog.alloc([...lead, depth], `${label}.margin`);
  const residual = prog.alloc([...lead, depth, E], `${label}.residual`);
  prog.dispatch({
    kernel: 'rq_search',
    defines: { EMBED_DIM: E },
    uniforms: { T, K, D: depth },
    bind: { x, w: codebook, w_norm: normSq, codes, z_q: zq, margin, residual },
    groups: cdiv(T, 64),
  });
  return { codes, zq, margin, residual };
}

/**
 * Decoding from codes: z_q = sum_d codebook[c[d]]   (RQBottleneck.embed_code, shared codebook).
 * codes [..., D] i32, codebook [K+1, E] -> [..., E]. The kernel cannot fail: codes outside
 * 0..K are clamped into it (validate codes on the host first); code K is the padding row, as
 * nn.Embedding returns it.
 */
export function rqEmbed(prog: Program, codes: Tensor, codebook: Tensor, label = 'rq.embed'): Tensor {
  expect(codes.dtype === 'i32', () => `rq_embed: codes must be i32, got ${codes.dtype}`);
  expect(codebook.shape.length === 2, () => `rq_embed ${codebook.label}: codebook ${shapeStr(codebook.shape)}`);
  const D = codes.shape[codes.shape.length - 1];
  const [rows, E] = codebook.shape;
  const T = codes.numel / D;
  const zq = prog.alloc([...codes.shape.slice(0, -1), E], label);
  prog.dispatch({ kernel: 'rq_embed', uniforms: { T, D, E, rows }, bind: { codes, w: codebook, z_q: zq }, groups: cdiv(T * E, 256) });
  return zq;
}

/** torch.mean over the head axis.  x [..., H*D] (heads concatenated) -> [..., D] */
export function meanHeads(prog: Program, x: Tensor, H: number, label = 'mean_heads'): Tensor {
  const W = x.shape[x.shape.length - 1];
  expect(W % H === 0, () => `mean_heads: ${shapeStr(x.shape)} does not split into ${H} heads`);
  const D = W / H;
  const rows = x.numel / W;
  const y = prog.alloc([...x.shape.slice(0, -1), D], label);
  prog.dispatch({ kernel: 'mean_heads', uniforms: { rows, H, D }, bind: { x, y }, groups: cdiv(rows * D, 256) });
  return y;
}

/** Elementwise product a * b of two tensors of the same size. */
export function mul(prog: Program, a: Tensor, b: Tensor, label = 'mul'): Tensor {
  expect(a.numel === b.numel, () => `mul: ${shapeStr(a.shape)} * ${shapeStr(b.shape)}`);
  const y = prog.alloc(a.shape, label);
  prog.dispatch({ kernel: 'mul', uniforms: { n: a.numel }, bind: { a, b, y }, groups: cdiv(a.numel, 256) });
  return y;
}
