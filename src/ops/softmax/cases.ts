// softmax's cases: the variant tests' shapes (one score; rows shorter than, about twice and about
// four times a workgroup; scores bound at element offsets), the kernel lab's (the 384 decoder's
// 24x24 attention: 576 rows of 576) and autotune's.
import { seeded } from '../../core/random.js';
import { compareAt, samplePositions, upload } from '../case-kit.js';
import type { OpCase, OpCases } from '../types.js';
import { softmaxAt } from './reference.js';
import { softmaxRows } from './softmax.js';

export interface SoftmaxShape {
  rows: number;
  N: number;
  /** The factor on the scores: 1 when they come scaled, C^-0.5 (0.044 at C = 512) when the softmax applies it. */
  scale: number;
  /** Elements before the scores and the weights in their buffers (the slices' offsets; default 0). */
  offset?: number;
}

/** softmax(scale * s) per row, scale * s spread over [-4, 4); work in bytes (one read, one write); `samples` outputs checked (all by default). */
export function softmaxCase(sh: SoftmaxShape, opts: { samples?: number } = {}): OpCase {
  const { rows, N, scale } = sh;
  const off = sh.offset ?? 0;
  const n = rows * N;
  return {
    op: 'softmax',
    title: `softmax ${rows}x${N}, scale ${scale}${off ? `, offset ${off}` : ''}`,
    dims: { rows, N },
    unit: 'GB/s',
    work: 8 * n,
    tolerance: 2e-6,
    prepare(gpu) {
      const s = seeded(n, 71 + rows + N, 4 / scale);
      const padded = new Float32Array(off + n);
      padded.set(s, off);
      const ts = upload(gpu, [off + n], padded, 'scores');
      const ref = softmaxAt(s, N, scale);
      return {
        record: (prog) => {
          const a = prog.alloc([off + n], 'weights');
          softmaxRows(prog, { t: ts, off }, { t: a, off }, rows, N, scale);
          return a;
        },
        check: (out) => compareAt(new Float32Array(out, off * 4, n), samplePositions(n, opts.samples, rows + N), ref),
        destroy: () => ts.buffer.destroy(),
      };
    },
  };
}

export const SOFTMAX_CASES: OpCases = {
  tests: () => [
    softmaxCase({ rows: 1, N: 1, scale: 1 }),
    softmaxCase({ rows: 1, N: 1, scale: 0.044, offset: 1 }),
    softmaxCase({ rows: 5, N: 7, scale: 1 }),
    softmaxCase({ rows: 5, N: 7, scale: 0.044, offset: 3 }),
    softmaxCase({ rows: 17, N: 576, scale: 1 }),
    softmaxCase({ rows: 17, N: 576, scale: 0.044 }),
    softmaxCase({ rows: 3, N: 1000, scale: 1, offset: 5 }),
    softmaxCase({ rows: 3, N: 1000, scale: 0.044 }),
  ],
  lab: () => [{ id: 'softmax_576x576', make: () => softmaxCase({ rows: 576, N: 576, scale: 0.044 }, { samples: 256 }) }],
  tune: () => [softmaxCase({ rows: 256, N: 576, scale: 0.044 }, { samples: 128 })],
};
