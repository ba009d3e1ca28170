// The decoder's NCHW kernels against float64 CPU references, on random shapes that are no
// multiple of the kernels' 4-wide tiles, and the batch splitting that keeps bindings under the limit.
import { describe, expect, it } from 'vitest';
import { conv2d } from '../src/ops/conv2d/conv2d.js';
import { groupNorm } from '../src/ops/group_norm/group_norm.js';
import { resizeBilinear, spatialAttention, tokensToNchw, upsampleNearest2x } from '../src/core/conv-ops.js';
import type { SplitOptions } from '../src/core/split.js';
import type { Tensor } from '../src/core/tensor.js';
import { variantsOf } from '../src/ops/choice.js';
import { relToMax } from './helpers/compare.js';
import { randomArray, resizeBilinearRef, spatialAttentionRef, tokensToNchwRef, upsampleNearest2xRef } from './helpers/cpu-ref-conv.js';
import { Program, runAndRead, testGpu, upload } from './helpers/gpu.js';

/** f32 result vs float64 reference: a few ulps of the largest value over sums of up to ~1000 terms. */
const TOL = 2e-6;

let seed = 1;
const rand = (n: number, scale = 1) => randomArray(n, seed++ * 7919, scale);

/** Builds one program with `build`, runs it, returns its output. */
async function runOp(label: string, inputs: { shape: number[]; data: Float32Array }[], build: (prog: Program, t: Tensor[]) => Tensor): Promise<Float32Array> {
  const { gpu, kernels } = await testGpu();
  const prog = new Program(kernels, label);
  const tensors = inputs.map((i, n) => upload(gpu, i.shape, i.data, `${label}.in${n}`));
  const [out] = await runAndRead(prog, [build(prog, tensors)]);
  prog.destroy();
  for (const t of tensors) t.buffer.destroy();
  return out;
}

// conv2d and group_norm, every variant on awkward shapes: test/ops.test.ts (src/ops/<op>/cases.ts).

describe('resampling', () => {
  it('nearest 2x upsample, B2 C3 @ 7x5', async () => {
    const x = rand(2 * 3 * 7 * 5);
    const got = await runOp('upsample', [{ shape: [2, 3, 7, 5], data: x }], (prog, [xt]) => upsampleNearest2x(prog, xt));
    expect(relToMax(got, upsampleNearest2xRef(x, 6, 7, 5))).toBe(0);
  });

  const sizes: [number, number, number, number][] = [
    [4, 4, 16, 16],
    [7, 7, 6, 6],
    [27, 27, 24, 24],
    [5, 9, 11, 4],
    [16, 16, 16, 16],
    [3, 1, 2, 5],
  ];
  for (const [H, W, OH, OW] of sizes) {
    it(`bilinear ${H}x${W} -> ${OH}x${OW}`, async () => {
      const B = 2;
      const C = 3;
      const x = rand(B * C * H * W);
      const got = await runOp('resize', [{ shape: [B, C, H, W], data: x }], (prog, [xt]) => resizeBilinear(prog, xt, [OH, OW]));
      expect(relToMax(got, resizeBilinearRef(x, B * C, H, W, OH, OW))).toBeLessThan(TOL);
    });
  }

  it('tokens [B, L, C] to NCHW, B2 3x4 tokens C5', async () => {
    const x = rand(2 * 12 * 5);
    const got = await runOp('tokens_to_nchw', [{ shape: [2, 12, 5], data: x }], (prog, [xt]) => tokensToNchw(prog, xt, 3, 4));
    expect(relToMax(got, tokensToNchwRef(x, 2, 12, 5))).toBe(0);
  });
});

describe('spatial attention', () => {
  // C and H*W multiples of 4 take the GEMM passes where the device has subgroups, the others the dedicated kernels.
  const cases = [
    { B: 2, C: 13, H: 5, W: 7 },
    { B: 1, C: 64, H: 16, W: 16 },
    { B: 1, C: 3, H: 1, W: 2 },
    { B: 3, C: 12, H: 4, W: 6 },
  ];
  for (const c of cases) {
    it(`B${c.B} C${c.C} over ${c.H}x${c.W} positions`, async () => {
      const n = c.B * c.C * c.H * c.W;
      const [q, k, v] = [rand(n, 2), rand(n, 2), rand(n)];
      const shape = [c.B, c.C, c.H, c.W];
      const got = await runOp('attention', [q, k, v].map((data) => ({ shape, data })), (prog, [qt, kt, vt]) => spatialAttention(prog, qt, kt, vt));
      expect(relToMax(got, spatialAttentionRef(q, k, v, c.B, c.C, c.H * c.W))).toBeLessThan(TOL);
    });
  }
});

describe('Winograd weights under the binding limit', () => {
  it('takes the smaller transform, then gemm_sg, when the packed weight would not fit one binding; forced, refuses naming the conv', async (ctx) => {
    const { kernels } = await testGpu();
    const v = variantsOf(kernels);
    const MiB128 = 128 * 2 ** 20;
    const conv = (Cin: number, Cout: number) => ({ K: 3, Cin, Cout, HW: 576, bindingLimit: MiB128 });
    try {
      v.setTuned({ 'conv2d/k3': 'winograd4' });
      if (v.forClass('conv2d', 'k3') !== 'winograd4') ctx.skip(); // no subgroups of 8: winograd4 cannot run here
      expect(v.choose('conv2d', conv(512, 512), () => 'c')).toBe('winograd4'); // 36 x 512 x 512 x 4 = 38 MB
      expect(v.choose('conv2d', conv(1024, 1024), () => 'c')).toBe('winograd'); // 151 MB; F(2x2): 67 MB
      expect(v.choose('conv2d', conv(2048, 2048), () => 'c')).toBe('gemm_sg'); // F(2x2): 268 MB
      expect(v.choose('conv2d', conv(2048, 1024), () => 'c')).toBe('winograd'); // F(2x2): 134217728 bytes, exactly the limit
      v.force('conv2d', 'winograd4');
      expect(() => v.choose('conv2d', conv(1024, 1024), () => "conv2d 'up.0.conv'")).toThrow(/--kernel conv2d=winograd4 cannot take conv2d 'up.0.conv': its 36-point weight of 1024 -> 1024 channels \(150994944 bytes\) exceeds the binding limit/);
    } finally {
      v.force('conv2d', undefined);
      v.setTuned({});
    }
  });
});

describe('batch splitting under a binding limit', () => {
  // 3 images whose per-image sizes are no multiple of the 256-byte offset alignment, with a limit
  // (per op: its largest per-image tensor + 256 bytes) that fits one image per dispatch: every op
  // must record one dispatch set per image and give the same values as unsplit.
  const B = 3;
  const [C, H, W] = [32, 7, 5];
  const item = C * H * W * 4; // 4480 bytes
  const shape = [B, C, H, W];
  const x = rand(B * C * H * W);
  const inputs = [
    { shape, data: x },
    { shape: [C, C, 3, 3], data: rand(C * C * 9, 0.1) },
    { shape: [C], data: rand(C, 0.1) },
    { shape: [C], data: rand(C).map((v) => 1 + 0.1 * v) },
    { shape, data: rand(B * C * H * W) },
    { shape, data: rand(B * C * H * W) },
  ];
  const ops: [string, number, (prog: Program, t: Tensor[], o: SplitOptions) => Tensor][] = [
    ['conv2d + residual', item, (prog, [xt, wt, bt, , rt], o) => conv2d(prog, xt, wt, bt, { residual: rt, ...o })],
    ['group_norm + SiLU', item, (prog, [xt, , bt, gt], o) => groupNorm(prog, xt, gt, bt, 1e-6, { silu: true, ...o })],
    ['upsample', 4 * item, (prog, [xt], o) => upsampleNearest2x(prog, xt, o)],
    ['resize', C * 4 * 9 * 4, (prog, [xt], o) => resizeBilinear(prog, xt, [4, 9], o)],
    ['tokens_to_nchw', item, (prog, [xt], o) => tokensToNchw(prog, xt.view([B, H * W, C]), H, W, o)],
    ['spatial attention', (H * W) ** 2 * 4, (prog, [xt, , , , kt, vt], o) => spatialAttention(prog, xt, kt, vt, o)],
    // the same values as 28 channels x 5 x 8 positions: the GEMM passes, batch slices at offsets
    ['spatial attention (GEMM)', 40 ** 2 * 4, (prog, [xt, , , , kt, vt], o) => spatialAttention(prog, xt.view([B, 28, 5, 8]), kt.view([B, 28, 5, 8]), vt.view([B, 28, 5, 8]), o)],
  ];
  for (const [name, largest, op] of ops) {
    it(`${name}: one image per dispatch = whole batch at once`, async () => {
      const counts: number[] = [];
      const run = (o: SplitOptions) =>
        runOp(name, inputs, (prog, t) => {
          const y = op(prog, t, o);
          counts.push(prog.dispatchCount);
          return y;
        });
      const whole = await run({});
      const split = await run({ maxBindingBytes: largest + 256 });
      expect(counts[1]).toBe(B * counts[0]);
      expect(Array.from(split)).toEqual(Array.from(whole));
    });
  }

  it('refuses a batch item that cannot fit one binding, naming the tensor', async () => {
    const { gpu, kernels } = await testGpu();
    const prog = new Program(kernels, 'too big');
    const [xt, wt, bt] = inputs.slice(0, 3).map((i, n) => upload(gpu, i.shape, i.data, ['big input', 'w', 'b'][n]));
    expect(() => conv2d(prog, xt, wt, bt, { maxBindingBytes: 1000 })).toThrow(/'big input' \[3,32,7,5\] is 4480 bytes.*binding limit of 1000 bytes/);
    prog.destroy();
    for (const t of [xt, wt, bt]) t.buffer.destroy();
  });
});
