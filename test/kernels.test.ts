// Transformer kernels against float64 CPU references on random shapes, including sizes that are
// no multiple of the 4x4 tile or of 4: the ops without variants, linear's shape errors and
// attention's broadcast query (the op modules' variants: test/ops.test.ts).
import { describe, expect, it } from 'vitest';
import { addScaled, patchIm2col } from '../src/core/ops.js';
import { attention, heads } from '../src/ops/attention/attention.js';
import { linear } from '../src/ops/linear/linear.js';
import { Program } from '../src/core/program.js';
import { relErr } from './helpers/compare.js';
import { attentionRef } from '../src/ops/attention/reference.js';
import { randn } from './helpers/cpu-ref.js';
import { runAndRead, testGpu, upload } from './helpers/gpu.js';

const TOL = 1e-5; // f32 accumulation vs float64, relative to the largest reference value

function check(name: string, got: Float32Array, ref: ArrayLike<number>, tol = TOL): void {
  const e = relErr(got, ref);
  const msg = `${name}: worst rel_to_max ${e.rel.toExponential(2)} at ${e.at} (got ${e.got}, ref ${e.ref})`;
  console.log(msg);
  expect(e.rel, msg).toBeLessThanOrEqual(tol);
}

describe('linear', () => {
  // Every variant on awkward shapes: test/ops.test.ts (src/ops/linear/cases.ts).
  it('refuses a weight whose width does not match the input', async () => {
    const { gpu, kernels } = await testGpu();
    const prog = new Program(kernels, 'bad');
    expect(() => linear(prog, upload(gpu, [3, 5], new Float32Array(15)), upload(gpu, [2, 4], new Float32Array(8), 'w.bad'))).toThrow(/w\.bad.*5 features.*takes 4/);
  });
});

describe('attention', () => {
  // Every variant on awkward shapes: test/ops.test.ts (src/ops/attention/cases.ts).
  it('reads q, k, v packed in one [B, L, 3W] buffer and broadcasts a shared query', async () => {
    const { gpu, kernels } = await testGpu();
    const B = 2, H = 3, D = 8, L = 6, W = H * D;
    const packed = randn(B * L * 3 * W, 77);
    const probe = randn(W, 78);
    const split = (part: number) => {
      const out = new Float32Array(B * L * W);
      for (let r = 0; r < B * L; r++) out.set(packed.subarray(r * 3 * W + part * W, r * 3 * W + (part + 1) * W), r * W);
      return out;
    };
    const prog = new Program(kernels, 'packed');
    const t = upload(gpu, [B, L, 3 * W], packed);
    const o = attention(prog, { B, H, D, Lq: 1, Lk: L, q: heads(upload(gpu, [1, 1, W], probe), 0, 0), k: heads(t, W), v: heads(t, 2 * W) });
    const [got] = await runAndRead(prog, [o]);
    const qB = new Float32Array(B * W);
    qB.set(probe, 0);
    qB.set(probe, W);
    check('attention packed', got, attentionRef(qB, split(1), split(2), B, H, D, 1, L, false));
    prog.destroy();
  });
});

describe('elementwise and patches', () => {
  it('add_scaled broadcasts b over leading dims', async () => {
    const { gpu, kernels } = await testGpu();
    const a = randn(3 * 5 * 7, 1);
    const b = randn(5 * 7, 2);
    const prog = new Program(kernels, 'add');
    const y = addScaled(prog, upload(gpu, [3, 5, 7], a), upload(gpu, [5, 7], b), 0.6);
    const [got] = await runAndRead(prog, [y]);
    check('add_scaled', got, Array.from(a, (v, i) => v + 0.6 * b[i % 35]));
    prog.destroy();
  });
  it('patch_im2col lays out conv patches in (ci, ky, kx) order, dropping the remainder', async () => {
    const { gpu, kernels } = await testGpu();
    const B = 2, Cin = 3, S = 11, P = 3, G = 3;
    const px = randn(B * Cin * S * S, 9);
    const prog = new Program(kernels, 'im2col');
    const cols = patchIm2col(prog, upload(gpu, [B, Cin, S, S], px), P);
    expect(cols.shape).toEqual([B, G * G, Cin * P * P]);
    const [got] = await runAndRead(prog, [cols]);
    const ref: number[] = [];
    for (let b = 0; b < B; b++)
      for (let py = 0; py < G; py++)
        for (let pxx = 0; pxx < G; pxx++)
          for (let ci = 0; ci < Cin; ci++)
            for (let ky = 0; ky < P; ky++)
              for (let kx = 0; kx < P; kx++) ref.push(px[((b * Cin + ci) * S + py * P + ky) * S + pxx * P + kx]);
    expect(Array.from(got)).toEqual(ref);
    prog.destroy();
  });
});
