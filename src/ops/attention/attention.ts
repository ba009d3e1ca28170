// attention: softmax(q k^T * scale) v per batch item and head over strided head views, in the
// variant the adapter's choice gives (spec.ts).
import { cdiv, expect } from '../../core/arith.js';
import type { Program } from '../../core/program.js';
import { splitBatch, type SplitOptions } from '../../core/split.js';
import { lastDim, type Tensor } from '../../core/tensor.js';
import { pickWorkgroup, variantsOf } from '../choice.js';
import { WG_LANES, WG_QUERIES, wgStorageBytes } from './spec.js';

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
 * The kernel is the variant chosen for this adapter (spec.ts); sg and sg2 need vec4-aligned views
 * (D, offsets and strides multiples of 4); lane takes any, wg (GPU-shaped) any head dim up to
 * 119 (its workgroup memory). Over the binding
 * limit, in ranges of batch items (split.ts);
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
  const aligned = a.D % 4 === 0 && views.every((t) => t.off % 4 === 0 && t.bs % 4 === 0 && t.rs % 4 === 0 && t.t.offset % 16 === 0);
  const what = () => `attention ${a.label ?? ''} (${a.B} x ${a.H} heads x ${a.Lq} queries x ${a.Lk} keys x ${a.D})`;
  const variant = variantsOf(prog.kernels).choose('attention', { Lq: a.Lq, D: a.D, aligned: aligned ? 1 : 0, workgroupStorage: prog.gpu.limits.maxComputeWorkgroupStorageSize }, what);
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
    // Key tiles as large as the device's workgroup storage allows, a multiple of the lanes per
    // query (each lane scores KEY_TILE / WG_LANES keys), at most 64 rows; WG_LANES rows always
    // fit (spec.ts refuses head dims where they would not).
    const storage = prog.gpu.limits.maxComputeWorkgroupStorageSize;
    let KEY_TILE = 64;
    while (KEY_TILE > WG_LANES && wgStorageBytes(a.D, KEY_TILE) > storage) KEY_TILE -= WG_LANES;
    const qBlocks = cdiv(a.Lq, WG_QUERIES);
    const defines = { HEAD_DIM: a.D, KEY_TILE, QUERIES: WG_QUERIES, LANES: WG_LANES };
    prog.dispatch({ kernel: 'attention_wg', defines, uniforms: { ...common, qBlocks, ...strides }, bind, groups: a.B * a.H * qBlocks, cost });
    return;
  }
  // Any number of queries: with fewer than a workgroup's, the idle invocations repeat the last one.
  const QUERIES = ({ sg: 1, sg2: 2 } as Record<string, number>)[variant]; // per invocation (attention_sg)
  if (QUERIES) {
    const WORKGROUP = pickWorkgroup(prog.gpu);
    const qGroups = cdiv(a.Lq, WORKGROUP * QUERIES);
    prog.dispatch({ kernel: 'attention_sg', defines: { HEAD_DIM: a.D, WORKGROUP, QUERIES }, uniforms: { ...common, qGroups, ...strides }, bind, groups: a.B * a.H * qGroups, cost });
    return;
  }
  expect(variant === 'lane', () => `attention: no recording for variant '${variant}'`);
  prog.dispatch({ kernel: 'attention', defines: { HEAD_DIM: a.D }, uniforms: { ...common, ...strides }, bind, groups: cdiv(a.B * a.H * a.Lq, 64), cost });
}

