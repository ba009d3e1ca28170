// layer_norm's cases: the variant tests' shapes (C = 1, widths below, at and over a workgroup,
// the model's 1152; means offset from 0 so that the centred variance matters), the kernel lab's
// (the 384 encoder's 729 tokens x 1152) and autotune's.
import { seededGaussian } from '../../core/random.js';
import { compareAt, samplePositions, upload } from '../case-kit.js';
import type { OpCase, OpCases } from '../types.js';
import { layerNorm } from './layer_norm.js';
import { layerNormAt } from './reference.js';

/** torch.nn.LayerNorm(C, eps) on x [rows, C] ~ N(2, 9); work in bytes (one read, one write); `samples` outputs checked (all by default). */
export function layerNormCase(rows: number, C: number, eps: number, opts: { samples?: number } = {}): OpCase {
  const n = rows * C;
  return {
    op: 'layer_norm',
    title: `LayerNorm ${rows}x${C}, eps ${eps}`,
    dims: { rows, C },
    unit: 'GB/s',
    work: 8 * n,
    tolerance: 2e-6,
    prepare(gpu) {
      const x = seededGaussian(n, rows + C, 2, 3);
      const g = seededGaussian(C, C);
      const b = seededGaussian(C, C + 1);
      const tx = upload(gpu, [rows, C], x, 'x');
      const tg = upload(gpu, [C], g, 'gamma');
      const tb = upload(gpu, [C], b, 'beta');
      const ref = layerNormAt(x, C, g, b, eps);
      return {
        record: (prog) => layerNorm(prog, tx, tg, tb, eps, 'y'),
        check: (out) => compareAt(new Float32Array(out, 0, n), samplePositions(n, opts.samples, rows + C), ref),
        destroy: () => [tx, tg, tb].forEach((t) => t.buffer.destroy()),
      };
    },
  };
}

export const LAYER_NORM_CASES: OpCases = {
  tests: () => [layerNormCase(1, 1, 1e-5), layerNormCase(7, 13, 1e-6), layerNormCase(33, 64, 1e-5), layerNormCase(3, 1152, 1e-6)],
  lab: () => [{ id: 'layernorm_729x1152', make: () => layerNormCase(729, 1152, 1e-6, { samples: 256 }) }],
  tune: () => [layerNormCase(256, 1152, 1e-6, { samples: 128 })],
};
