// rq_search's cases: the variant tests' sizes (widths no multiple of 4, codebooks smaller than a
// workgroup, depths 1..8), the kernel lab's (the released quantizer: 729 tokens, 16384 x 32,
// depth 8) and autotune's. Codes are checked against exact float64 distances, following the
// engine's codes: the error is how much farther the chosen codeword is than the nearest, over the
// size of the distance's terms (near ties at float32 rounding are within the tolerance).
import { seeded } from '../../core/random.js';
import { upload } from '../case-kit.js';
import type { CaseError, OpCase, OpCases } from '../types.js';
import { rqReference } from './reference.js';
import { rqSearch, searchCodebookData } from './rq_search.js';

/** T tokens of width E against a K x E codebook, D depths; `tokens` tokens checked (all by default); work in FLOPs of the distance dot products. */
export function rqSearchCase(T: number, K: number, E: number, D: number, opts: { tokens?: number; tolerance?: number } = {}): OpCase {
  const tolerance = opts.tolerance ?? 1e-5;
  return {
    op: 'rq_search',
    title: `rq_search ${T} tokens, ${K}x${E} codebook, depth ${D}`,
    dims: { T, K, E },
    unit: 'GFLOP/s',
    work: 2 * T * D * K * Math.ceil(E / 4) * 4,
    tolerance,
    prepare(gpu) {
      const x = seeded(T * E, 61 + T + E, 0.5);
      const weight = seeded((K + 1) * E, 67 + K, 0.25);
      const cb = searchCodebookData(weight, [K + 1, E]);
      const tx = upload(gpu, [T, E], x, 'x');
      const rows = upload(gpu, [K, cb.width], cb.rows, 'codebook');
      const normSq = upload(gpu, [K], cb.normSq, 'norms');
      const n = Math.min(opts.tokens ?? T, T);
      const tokens = n === T ? Array.from({ length: T }, (_, i) => i) : [0, T - 1, ...Array.from({ length: Math.max(0, n - 2) }, (_, i) => Math.floor(((i + 1) * T) / n))];
      return {
        record: (prog) => rqSearch(prog, tx, { rows, normSq }, D).codes,
        check: (out): CaseError => {
          const codes = new Int32Array(out, 0, T * D);
          const xs = new Float32Array(tokens.length * E);
          const follow = new Int32Array(tokens.length * D);
          tokens.forEach((t, i) => {
            xs.set(x.subarray(t * E, (t + 1) * E), i * E);
            follow.set(codes.subarray(t * D, (t + 1) * D), i * D);
          });
          const ref = rqReference(xs, tokens.length, E, weight, K, D, follow, tolerance);
          let worst: CaseError = { err: 0, samples: tokens.length * D, at: 0, got: codes[0], ref: ref.codes[0] };
          for (const tie of ref.nearTies) {
            const err = tie.excess / (ref.scale[tie.t * D + tie.d] || 1);
            if (!(err <= worst.err)) worst = { err: Number.isNaN(err) ? Infinity : err, samples: tokens.length * D, at: tokens[tie.t] * D + tie.d, got: tie.chosen, ref: tie.best };
          }
          return worst;
        },
        destroy: () => [tx, rows, normSq].forEach((t) => t.buffer.destroy()),
      };
    },
  };
}

export const RQ_SEARCH_CASES: OpCases = {
  tests: () => [rqSearchCase(1, 1, 3, 1), rqSearchCase(5, 7, 3, 2), rqSearchCase(37, 50, 13, 3), rqSearchCase(65, 64, 16, 4), rqSearchCase(130, 333, 13, 5), rqSearchCase(203, 1001, 32, 8)],
  lab: () => [{ id: 'rq_search_729x16384x32_d8', make: () => rqSearchCase(729, 16384, 32, 8, { tokens: 8 }) }],
  tune: () => [rqSearchCase(256, 2048, 32, 2, { tokens: 4 })],
};
