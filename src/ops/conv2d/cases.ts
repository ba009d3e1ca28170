// conv2d's cases: the variant tests' shapes (channels and sizes no multiple of 4, 1x1 and 3x3,
// with residual; batches split one image per binding and Winograd scratch for 3 tiles, so chunks
// straddle rows and images), the kernel lab's (the 384 decoder's sizes) and autotune's.
import { seeded } from '../../core/random.js';
import { compareAt, samplePositions, upload } from '../case-kit.js';
import type { OpCase, OpCases } from '../types.js';
import { conv2d } from './conv2d.js';
import { conv2dAt } from './reference.js';

export interface Conv2dShape {
  B: number;
  Cin: number;
  Cout: number;
  H: number;
  W: number;
  K: 1 | 3;
  residual?: boolean;
  /** Bind one image per dispatch and give the Winograd variants scratch for 3 tiles (B > 1). */
  split?: boolean;
}

/** torch.nn.Conv2d(Cin, Cout, K, padding K/2) with bias [+ residual]; `samples` outputs checked (all by default). */
export function conv2dCase(s: Conv2dShape, opts: { samples?: number; title?: string; tolerance?: number } = {}): OpCase {
  const { B, Cin, Cout, H, W, K } = s;
  const n = B * Cout * H * W;
  return {
    op: 'conv2d',
    title: opts.title ?? `conv${K}x${K} B${B} ${Cin}->${Cout} @ ${H}x${W}${s.residual ? ' + residual' : ''}${s.split ? ', split' : ''}`,
    // The binding limit that decides whether a Winograd weight fits is the device's; the cases are
    // far under it on every adapter (WebGPU's minimum is 128 MiB).
    dims: { K, Cin, Cout, HW: H * W, bindingLimit: 128 * 2 ** 20 },
    unit: 'GFLOP/s',
    work: 2 * B * Cout * Cin * K * K * H * W,
    tolerance: opts.tolerance ?? 2e-6,
    prepare(gpu) {
      const x = seeded(B * Cin * H * W, 31 + Cin + 5 * H);
      const w = seeded(Cout * Cin * K * K, 37 + Cout, 1 / Math.sqrt(Cin * K * K));
      const b = seeded(Cout, 41 + Cout, 0.1);
      const r = s.residual ? seeded(n, 43 + W) : undefined;
      const tx = upload(gpu, [B, Cin, H, W], x, 'x');
      const tw = upload(gpu, [Cout, Cin, K, K], w, 'w');
      const tb = upload(gpu, [Cout], b, 'bias');
      const tr = r ? upload(gpu, [B, Cout, H, W], r, 'residual') : undefined;
      const split = s.split ? { maxBindingBytes: Math.max(Cin, Cout) * H * W * 4 + 256, winogradScratchBytes: 3 * 36 * 4 * Math.max(Math.ceil(Cin / 4) * 4, Cout) } : {};
      const ref = conv2dAt(x, Cin, H, W, w, Cout, K, b, r);
      return {
        record: (prog) => conv2d(prog, tx, tw, tb, { residual: tr, label: 'y', ...split }),
        check: (out) => compareAt(new Float32Array(out, 0, n), samplePositions(n, opts.samples, Cout + H), ref),
        destroy: () => [tx, tw, tb, ...(tr ? [tr] : [])].forEach((t) => t.buffer.destroy()),
      };
    },
  };
}

const TEST_SHAPES: Conv2dShape[] = [
  { B: 2, Cin: 3, Cout: 5, H: 7, W: 5, K: 3, split: true },
  { B: 1, Cin: 13, Cout: 6, H: 9, W: 19, K: 3, residual: true },
  { B: 2, Cin: 8, Cout: 36, H: 5, W: 33, K: 3, residual: true, split: true },
  { B: 2, Cin: 32, Cout: 36, H: 16, W: 16, K: 3, residual: true },
  { B: 3, Cin: 20, Cout: 12, H: 6, W: 7, K: 3, residual: true, split: true },
  { B: 1, Cin: 4, Cout: 3, H: 1, W: 1, K: 3 },
  { B: 1, Cin: 64, Cout: 3, H: 6, W: 13, K: 3 },
  { B: 1, Cin: 9, Cout: 130, H: 3, W: 17, K: 3 },
  { B: 2, Cin: 7, Cout: 9, H: 5, W: 3, K: 1, split: true }, // H*W and Cin % 4 != 0: gemm_kn refuses it
  { B: 1, Cin: 70, Cout: 33, H: 4, W: 18, K: 1, residual: true },
  { B: 3, Cin: 12, Cout: 10, H: 4, W: 6, K: 1, residual: true, split: true }, // gemm_kn's own path, one image per binding (offsets)
  { B: 1, Cin: 5, Cout: 140, H: 48, W: 90, K: 3, residual: true }, // wg_tiled's large tile (wgTile)
];

export const CONV2D_CASES: OpCases = {
  tests: () => TEST_SHAPES.map((s) => conv2dCase(s)),
  lab: () => [
    { id: 'conv3x3_512_48x48', make: () => conv2dCase({ B: 1, Cin: 512, Cout: 512, H: 48, W: 48, K: 3 }, { samples: 256, tolerance: 5e-6, title: 'conv3x3 512->512 @ 48x48' }) },
    { id: 'conv3x3_128_192x192', make: () => conv2dCase({ B: 1, Cin: 128, Cout: 128, H: 192, W: 192, K: 3 }, { samples: 256, tolerance: 5e-6, title: 'conv3x3 128->128 @ 192x192' }) },
    { id: 'conv1x1_512_96x96', make: () => conv2dCase({ B: 1, Cin: 512, Cout: 256, H: 96, W: 96, K: 1 }, { samples: 256, tolerance: 5e-6, title: 'conv1x1 512->256 @ 96x96' }) },
    { id: 'conv1x1_1024_24x24', make: () => conv2dCase({ B: 1, Cin: 1024, Cout: 1024, H: 24, W: 24, K: 1 }, { samples: 256, tolerance: 5e-6, title: 'conv1x1 1024->1024 @ 24x24' }) },
  ],
  tune: () => [conv2dCase({ B: 1, Cin: 64, Cout: 64, H: 32, W: 32, K: 3 }, { samples: 64 }), conv2dCase({ B: 1, Cin: 128, Cout: 128, H: 32, W: 32, K: 1 }, { samples: 64 })],
};
