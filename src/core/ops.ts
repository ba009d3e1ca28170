// One function per kernel: checks shapes, allocates the output (a program activation) and
// records the dispatch. Shapes in comments are the tensors' logical shapes.
import type { Defines } from './kernels.js';
import type { Cost, Program } from './program.js';
import { splitBatch, splitRows, type SplitOptions } from './split.js';
import { Tensor, shapeStr, type GpuDType } from './tensor.js';
import { pickWorkgroup, shapeClass, subgroupsOf8, variantsOf, type PackedLayout } from './variants.js';
import { cdiv, expect } from './arith.js';

function lastDim(t: Tensor): number {
  return t.shape[t.shape.length - 1];
}

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
 * The kernel is the variant chosen for this adapter (variants.ts); the kn variants read the weight
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
  let variant = variantsOf(prog.kernels).choose('linear', shapeClass('linear', { M }));
  if (variant.startsWith('kn') && K % 4 !== 0) variant = 'tiled'; // x is read as vec4 rows
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
 * batched GEMM of the Winograd convolution and the 1x1 convolution on NCHW images (conv-ops.ts).
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

/** torch.nn.LayerNorm over the last dim.  x [..., C] -> [..., C] (in ranges of rows over the binding limit) */
export function layerNorm(prog: Program, x: Tensor, gamma: Tensor, beta: Tensor, eps: number, label = gamma.label, opts: SplitOptions = {}): Tensor {
  const C = lastDim(x);
  expect(gamma.numel === C && beta.numel === C, () => `layer_norm ${gamma.label}: weight ${shapeStr(gamma.shape)} for input ${shapeStr(x.shape)}`);
  const y = prog.alloc(x.shape, label);
  splitRows(prog, `layer_norm ${label}`, x.numel / C, [x, y], opts, (rows, [xs, ys]) => {
    prog.dispatch({ kernel: 'layernorm', uniforms: { rows, C, eps }, bind: { x: xs, gamma, beta, y: ys }, groups: cdiv(rows, 64), cost: { bytes: 8 * rows * C } });
  });
  return y;
}

/**
 * y = a + alpha * b, b broadcast over a's leading dims (b.numel divides a.numel); in ranges of
 * whole copies of b over the binding limit.
 */
export function addScaled(prog: Program, a: Tensor, b: Tensor, alpha = 1, label = 'add', opts: SplitOptions = {}): Tensor {
  expect(a.numel % b.numel === 0, () => `add: ${shapeStr(b.shape)} does not broadcast to ${shapeStr(a.shape)}`);
  const y = prog.alloc(a.shape, label);
  const nb = b.numel;
  splitRows(prog, `add ${label}`, a.numel / nb, [a, y], opts, (rows, [as, ys]) => {
    const n = rows * nb;
    prog.dispatch({ kernel: 'add_scaled', uniforms: { n, nb, alpha }, bind: { a: as, b, y: ys }, groups: cdiv(n, 256), cost: { bytes: 4 * (2 * n + nb) } });
  });
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

/**
 * softmax(q k^T * scale) v per batch item and head -> [B, Lq, H*D] (heads concatenated).
 * The kernel is the variant chosen for this adapter (variants.ts); sg and sg2 need vec4-aligned views
 * (D, offsets and strides multiples of 4), else the call uses lane; wg
 * (GPU-shaped) takes any shape. Over the binding limit, in ranges of batch items (split.ts);
 * a view with batch stride 0 (one query set for every item) is bound whole.
 */
export function attention(prog: Program, a: AttentionArgs, opts: SplitOptions = {}): Tensor {
  const o = prog.alloc([a.B, a.Lq, a.H * a.D], a.label ?? 'attention');
  const perItem = [...new Set([a.q, a.k, a.v].filter((v) => v.bs > 0).map((v) => v.t))];
  splitBatch(prog, `attention ${o.label}`, a.B, [o, ...perItem], opts, (n, [os, ...slices]) => {
    const sliced = (v: HeadView): HeadView => {
      const s = slices[perItem.indexOf(v.t)];
      return s ? { t: s.t, off: v.off + s.off, bs: v.bs, rs: v.rs } : v;
    };
    attentionItems(prog, { ...a, B: n, q: sliced(a.q), k: sliced(a.k), v: sliced(a.v) }, { ...heads(o), t: os.t, off: os.off });
  });
  return o;
}

/** attention() of a.B batch items into the view `ov`, one dispatch of the chosen variant. */
function attentionItems(prog: Program, a: AttentionArgs, ov: HeadView): void {
  const views = [a.q, a.k, a.v];
  let variant = variantsOf(prog.kernels).choose('attention', shapeClass('attention', { Lq: a.Lq }));
  const aligned = a.D % 4 === 0 && views.every((t) => t.off % 4 === 0 && t.bs % 4 === 0 && t.rs % 4 === 0 && t.t.offset % 16 === 0);
  // Any number of queries: with fewer than a workgroup's, the idle invocations repeat the last one.
  if (variant.startsWith('sg') && !(aligned && subgroupsOf8(prog.gpu))) variant = 'lane';
  const strides = {
    q_off: a.q.off, q_bs: a.q.bs, q_rs: a.q.rs,
    k_off: a.k.off, k_bs: a.k.bs, k_rs: a.k.rs,
    v_off: a.v.off, v_bs: a.v.bs, v_rs: a.v.rs,
    o_off: ov.off, o_bs: ov.bs, o_rs: ov.rs,
  };
  const common = { B: a.B, H: a.H, Lq: a.Lq, Lk: a.Lk, scale: a.scale ?? 1 / Math.sqrt(a.D), causal: a.causal ? 1 : 0 };
  const bind = { q: a.q.t, k: a.k.t, v: a.v.t, o: ov.t };
  // Causal attention does about half the work; counted as full (the conventional figure).
  const cost = { flops: 4 * a.B * a.H * a.Lq * a.Lk * a.D };
  if (variant === 'wg') {
    // Key tiles as large as the device's workgroup storage allows (two tiles of KEY_TILE x D f32), at most 64 rows.
    const KEY_TILE = Math.max(1, Math.min(64, Math.floor(prog.gpu.limits.maxComputeWorkgroupStorageSize / (8 * a.D))));
    const qBlocks = cdiv(a.Lq, 64);
    prog.dispatch({ kernel: 'attention_wg', defines: { HEAD_DIM: a.D, KEY_TILE }, uniforms: { ...common, qBlocks, ...strides }, bind, groups: a.B * a.H * qBlocks, cost });
    return;
  }
  const QUERIES = ({ sg: 1, sg2: 2 } as Record<string, number>)[variant]; // per invocation (attention_sg)
  if (QUERIES) {
    const WORKGROUP = pickWorkgroup(prog.gpu);
    const qGroups = cdiv(a.Lq, WORKGROUP * QUERIES);
    prog.dispatch({ kernel: 'attention_sg', defines: { HEAD_DIM: a.D, WORKGROUP, QUERIES }, uniforms: { ...common, qGroups, ...strides }, bind, groups: a.B * a.H * qGroups, cost });
    return;
  }
  prog.dispatch({ kernel: 'attention', defines: { HEAD_DIM: a.D }, uniforms: { ...common, ...strides }, bind, groups: cdiv(a.B * a.H * a.Lq, 64), cost });
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
