// group_norm's cases: the variant tests' shapes (H*W no multiple of 4, several chunks per group
// at each variant's chunk size, a large offset per channel; batches split one image per
// binding), the kernel lab's (the 384 decoder's) and autotune's.
import { seeded } from '../../core/random.js';
import { compareAt, samplePositions, upload } from '../case-kit.js';
import type { OpCase, OpCases } from '../types.js';
import { groupNorm } from './group_norm.js';
import { groupNormAt } from './reference.js';

export interface GroupNormShape {
  B: number;
  C: number;
  H: number;
  W: number;
  silu?: boolean;
  /** Amplitude of an offset per channel, so that the centred variance matters (default 5). */
  offset?: number;
  /** Bind one image per dispatch (B > 1). */
  split?: boolean;
}

/** torch.nn.GroupNorm(32, C, eps=1e-6) [+ SiLU]; work in bytes (one read, one write); `samples` outputs checked (all by default). */
export function groupNormCase(s: GroupNormShape, opts: { samples?: number; title?: string; tolerance?: number } = {}): OpCase {
  const { B, C, H, W } = s;
  const HW = H * W;
  const n = B * C * HW;
  const offset = s.offset ?? 5;
  return {
    op: 'group_norm',
    title: opts.title ?? `GroupNorm B${B} ${C}ch @ ${H}x${W}${s.silu ? ' +SiLU' : ''}, offset ${offset}${s.split ? ', split' : ''}`,
    dims: { HW, aligned: 1 },
    unit: 'GB/s',
    work: 8 * n,
    tolerance: opts.tolerance ?? 2e-6,
    prepare(gpu) {
      const x = seeded(n, 43 + C + HW, 3).map((v, i) => v + offset * Math.sin(Math.floor(i / HW)));
      const g = seeded(C, 47 + C).map((v) => 1 + 0.1 * v);
      const b = seeded(C, 53 + C, 0.1);
      const tx = upload(gpu, [B, C, H, W], x, 'x');
      const tg = upload(gpu, [C], g, 'gamma');
      const tb = upload(gpu, [C], b, 'beta');
      const ref = groupNormAt(x, C, HW, 32, g, b, 1e-6, s.silu ?? false);
      return {
        record: (prog) => groupNorm(prog, tx, tg, tb, 1e-6, { groups: 32, silu: s.silu, label: 'y', maxBindingBytes: s.split ? C * HW * 4 + 256 : undefined }),
        check: (out) => compareAt(new Float32Array(out, 0, n), samplePositions(n, opts.samples, C + HW), ref),
        destroy: () => [tx, tg, tb].forEach((t) => t.buffer.destroy()),
      };
    },
  };
}

export const GROUP_NORM_CASES: OpCases = {
  tests: () => [
    groupNormCase({ B: 2, C: 32, H: 7, W: 5, split: true }), // H*W % 4 != 0: vec4 refuses it
    groupNormCase({ B: 1, C: 64, H: 24, W: 24, silu: true }), // 1152 values per group: 3 chunks, the last partial
    groupNormCase({ B: 3, C: 64, H: 4, W: 5, silu: true, split: true }),
    groupNormCase({ B: 2, C: 96, H: 3, W: 3, silu: true }),
    groupNormCase({ B: 1, C: 32, H: 1, W: 1 }),
    groupNormCase({ B: 1, C: 32, H: 2, W: 2 }),
    groupNormCase({ B: 1, C: 64, H: 40, W: 33 }),
    // An offset 30x the spread: the f32 inputs themselves then carry ~1e-6 of the output's size.
    groupNormCase({ B: 1, C: 64, H: 40, W: 36, offset: 100 }, { tolerance: 1e-5 }),
    // wg: 4608 values per group, two 4096-value workgroup chunks, the last an eighth full.
    groupNormCase({ B: 2, C: 64, H: 48, W: 48, silu: true, split: true }),
    // wg: 270400 values per group, 67 chunks: more than its combine's 64 invocations.
    groupNormCase({ B: 1, C: 32, H: 520, W: 520 }, { samples: 4096 }),
  ],
  lab: () => [{ id: 'groupnorm_silu_512_96x96', make: () => groupNormCase({ B: 1, C: 512, H: 96, W: 96, silu: true }, { samples: 256, tolerance: 1e-5, title: 'GroupNorm+SiLU 512ch @ 96x96' }) }],
  tune: () => [groupNormCase({ B: 1, C: 128, H: 32, W: 32, silu: true }, { samples: 128, tolerance: 1e-5 })],
};
