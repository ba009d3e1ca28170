// linear's cases: the variant tests' shapes (no multiple of the tiles, of 4 or of the subgroup
// size; each plain, with bias + GELU, with bias + residual), the kernel lab's (the so400m
// encoder's MLP sizes) and autotune's (one per shape class).
import { seeded } from '../../core/random.js';
import { compareAt, samplePositions, upload } from '../case-kit.js';
import type { OpCase, OpCases } from '../types.js';
import { linear } from './linear.js';
import { linearAt } from './reference.js';

type Mode = 'plain' | 'bias' | 'bias+gelu' | 'bias+residual';

/** torch.nn.Linear on x [M, K], w [N, K] (+ bias [N] [+ GELU | + residual [M, N]]); `samples` outputs checked (all by default). */
export function linearCase(M: number, K: number, N: number, opts: { mode?: Mode; samples?: number; title?: string; tolerance?: number } = {}): OpCase {
  const mode = opts.mode ?? 'bias+gelu';
  return {
    op: 'linear',
    title: opts.title ?? `linear ${M}x${K} -> ${N}${mode === 'plain' ? '' : ` ${mode}`}`,
    dims: { M, K },
    unit: 'GFLOP/s',
    work: 2 * M * N * K,
    tolerance: opts.tolerance ?? 1e-5,
    prepare(gpu) {
      const x = seeded(M * K, 11 + K + 7 * M);
      const w = seeded(N * K, 13 + N, 1 / Math.sqrt(K));
      const b = seeded(N, 17 + N, 0.1);
      const r = seeded(M * N, 19 + M + N);
      const tx = upload(gpu, [M, K], x, 'x');
      const tw = upload(gpu, [N, K], w, 'w');
      const tb = upload(gpu, [N], b, 'bias');
      const tr = upload(gpu, [M, N], r, 'residual');
      const ref = linearAt(x, w, N, K, mode === 'plain' ? undefined : b, mode === 'bias+residual' ? r : undefined, mode === 'bias+gelu');
      return {
        record: (prog) => linear(prog, tx, tw, { bias: mode === 'plain' ? undefined : tb, act: mode === 'bias+gelu' ? 'gelu_tanh' : 'none', residual: mode === 'bias+residual' ? tr : undefined, label: 'y' }),
        check: (out) => compareAt(new Float32Array(out, 0, M * N), samplePositions(M * N, opts.samples, M + N), ref),
        destroy: () => [tx, tw, tb, tr].forEach((t) => t.buffer.destroy()),
      };
    },
  };
}

const TEST_SHAPES: [number, number, number][] = [
  [1, 1, 1], // M, K, N
  [1, 8, 5],
  [16, 64, 64],
  [3, 4, 1],
  [17, 132, 33],
  [50, 48, 130],
  [70, 36, 9],
  [65, 260, 257],
  [5, 3, 7], // K % 4 != 0: the kn variants refuse it
  [1030, 12, 1030], // enough 128x128 tiles for wg_tiled's large tile (wgTile)
];

export const LINEAR_CASES: OpCases = {
  tests: () => TEST_SHAPES.flatMap(([M, K, N]) => (['plain', 'bias+gelu', 'bias+residual'] as const).map((mode) => linearCase(M, K, N, { mode }))),
  lab: () => [
    { id: 'linear_1152x1152', make: () => linearCase(729, 1152, 1152, { mode: 'bias', samples: 256, title: 'linear 729x1152 -> 1152' }) },
    { id: 'linear_1152x4304', make: () => linearCase(729, 1152, 4304, { samples: 256, title: 'linear 729x1152 -> 4304 +GELU' }) },
  ],
  tune: () => [linearCase(256, 512, 512, { samples: 64 }), linearCase(4, 512, 512, { samples: 64 })],
};
