// attention's cases: the variant tests' shapes (head dims and lengths no multiple of 4 or of the
// subgroup, causal or not, q/k/v as column ranges of one packed buffer), the kernel lab's (the
// so400m encoder's self-attention) and autotune's (one per shape class).
import { seeded } from '../../core/random.js';
import { compareAt, samplePositions, upload } from '../case-kit.js';
import type { OpCase, OpCases } from '../types.js';
import { attention, heads } from './attention.js';
import { attentionAt } from './reference.js';

export interface AttentionShape {
  B: number;
  H: number;
  D: number;
  Lq: number;
  Lk: number;
  causal?: boolean;
  /** q, k and v as column ranges of one [B, L, 3*H*D] buffer (Lq = Lk). */
  packed?: boolean;
}

/** softmax(q k^T / sqrt(D)) v over H heads; `samples` outputs checked (all by default; at large sizes whole rows of sampled queries). */
export function attentionCase(s: AttentionShape, opts: { samples?: number; title?: string; tolerance?: number } = {}): OpCase {
  const { B, H, D, Lq, Lk } = s;
  const W = H * D;
  const causal = s.causal ?? false;
  const aligned = D % 4 === 0 ? 1 : 0; // the views below start at multiples of W
  return {
    op: 'attention',
    title: opts.title ?? `attention B${B} ${H} heads x ${Lq}${Lq !== Lk ? `/${Lk}` : ''} x ${D}${causal ? ' causal' : ''}${s.packed ? ' packed q/k/v' : ''}`,
    // WebGPU's minimum workgroup storage: the cases' head dims fit it on every device.
    dims: { Lq, D, aligned, workgroupStorage: 16384 },
    unit: 'GFLOP/s',
    work: 4 * B * H * Lq * Lk * D,
    tolerance: opts.tolerance ?? 1e-5,
    prepare(gpu) {
      const q = seeded(B * Lq * W, 21 + W + Lq, 1.5);
      const k = seeded(B * Lk * W, 22 + W + Lk, 1.5);
      const v = seeded(B * Lk * W, 23 + W);
      const ref = attentionAt(q, k, v, H, D, Lq, Lk, causal);
      let tensors;
      let views;
      if (s.packed) {
        const all = new Float32Array(B * Lk * 3 * W);
        for (let r = 0; r < B * Lk; r++) [q, k, v].forEach((p, part) => all.set(p.subarray(r * W, (r + 1) * W), r * 3 * W + part * W));
        const t = upload(gpu, [B, Lk, 3 * W], all, 'qkv');
        tensors = [t];
        views = { q: heads(t, 0), k: heads(t, W), v: heads(t, 2 * W) };
      } else {
        const [tq, tk, tv] = [upload(gpu, [B, Lq, W], q, 'q'), upload(gpu, [B, Lk, W], k, 'k'), upload(gpu, [B, Lk, W], v, 'v')];
        tensors = [tq, tk, tv];
        views = { q: heads(tq), k: heads(tk), v: heads(tv) };
      }
      // Whole rows of a few (item, query, head) triples: each reference row costs Lk * D.
      const n = B * Lq * W;
      const positions =
        opts.samples === undefined
          ? samplePositions(n, undefined, 0)
          : samplePositions(B * Lq * H, Math.max(1, Math.floor(opts.samples / D)), 29).flatMap((p) => Array.from({ length: D }, (_, e) => Math.floor(p / H) * W + (p % H) * D + e));
      return {
        record: (prog) => attention(prog, { B, H, D, Lq, Lk, causal, ...views, label: 'o' }),
        check: (out) => compareAt(new Float32Array(out, 0, n), positions, ref),
        destroy: () => tensors.forEach((t) => t.buffer.destroy()),
      };
    },
  };
}

// Head dims 1, 8, 16, 19 and 72 only: each head dim is a pipeline of each kernel (HEAD_DIM), and
// every pipeline is a compile on a fresh machine (CI).
const TEST_SHAPES: AttentionShape[] = [
  { B: 1, H: 1, D: 1, Lq: 1, Lk: 1 },
  { B: 1, H: 1, D: 8, Lq: 1, Lk: 1 },
  { B: 2, H: 4, D: 16, Lq: 9, Lk: 9, causal: true },
  { B: 3, H: 2, D: 8, Lq: 1, Lk: 11 },
  { B: 2, H: 3, D: 19, Lq: 7, Lk: 7 }, // D % 4 != 0: the sg variants refuse it
  { B: 2, H: 3, D: 8, Lq: 9, Lk: 9 },
  { B: 2, H: 2, D: 16, Lq: 37, Lk: 37, causal: true },
  { B: 1, H: 2, D: 72, Lq: 70, Lk: 70 },
  { B: 1, H: 2, D: 16, Lq: 130, Lk: 130, causal: true },
  { B: 3, H: 2, D: 8, Lq: 11, Lk: 19 },
  { B: 2, H: 3, D: 19, Lq: 23, Lk: 83 }, // wg: D not a multiple of its 8 lanes, a partial last query block and key tile
  { B: 2, H: 2, D: 8, Lq: 21, Lk: 21, packed: true },
];

export const ATTENTION_CASES: OpCases = {
  tests: () => TEST_SHAPES.map((s) => attentionCase(s)),
  lab: () => [{ id: 'attention_16x729x72', make: () => attentionCase({ B: 1, H: 16, D: 72, Lq: 729, Lk: 729 }, { samples: 256, title: 'attention 16 heads x 729 x 72' }) }],
  tune: () => [attentionCase({ B: 1, H: 4, D: 64, Lq: 256, Lk: 256 }, { samples: 128 }), attentionCase({ B: 1, H: 4, D: 64, Lq: 1, Lk: 256 }, { samples: 64 })],
};
