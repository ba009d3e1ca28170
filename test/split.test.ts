// The transformer ops over the binding limit: done in ranges of rows (linear, layer_norm, add) or
// of batch items (attention), the result bit for bit the one of a single dispatch.
import { describe, expect, it } from 'vitest';
import { addScaled } from '../src/core/ops.js';
import { attention, heads } from '../src/ops/attention/attention.js';
import { layerNorm } from '../src/ops/layer_norm/layer_norm.js';
import { linear } from '../src/ops/linear/linear.js';
import { Program } from '../src/core/program.js';
import type { SplitOptions } from '../src/core/split.js';
import type { Tensor } from '../src/core/tensor.js';
import { randn } from './helpers/cpu-ref.js';
import { runAndRead, testGpu, upload } from './helpers/gpu.js';

/** Records `op` with and without a binding limit; returns both outputs and dispatch counts. */
async function wholeAndSplit(record: (prog: Program, opts: SplitOptions) => Tensor, maxBindingBytes: number) {
  const { kernels } = await testGpu();
  const results: { out: Float32Array; dispatches: number }[] = [];
  for (const opts of [{}, { maxBindingBytes }]) {
    const prog = new Program(kernels, 'split test');
    const y = record(prog, opts);
    const [out] = await runAndRead(prog, [y]);
    results.push({ out, dispatches: prog.dispatchCount });
    prog.destroy();
  }
  return { whole: results[0], split: results[1] };
}

describe('ops over the binding limit', () => {
  it('linear with bias, GELU and residual in ranges of 64 rows', async () => {
    const { gpu } = await testGpu();
    const [M, N, K] = [200, 20, 12];
    const x = upload(gpu, [M, K], randn(M * K, 1));
    const w = upload(gpu, [N, K], randn(N * K, 2, 0.3));
    const b = upload(gpu, [N], randn(N, 3));
    const r = upload(gpu, [M, N], randn(M * N, 4));
    // The widest bound tensors have 80-byte rows: at most 75 rows fit 6000 bytes.
    const { whole, split } = await wholeAndSplit((prog, opts) => linear(prog, x, w, { bias: b, act: 'gelu_tanh', residual: r, ...opts }), 6000);
    expect(whole.dispatches).toBe(1);
    expect(split.dispatches).toBeGreaterThanOrEqual(3);
    expect(Array.from(split.out)).toEqual(Array.from(whole.out));
  });

  it('layer_norm and a broadcast add in ranges', async () => {
    const { gpu } = await testGpu();
    const [B, L, C] = [3, 70, 16];
    const x = upload(gpu, [B, L, C], randn(B * L * C, 5));
    const g = upload(gpu, [C], randn(C, 6));
    const be = upload(gpu, [C], randn(C, 7));
    const pos = upload(gpu, [L, C], randn(L * C, 8));
    const ln = await wholeAndSplit((prog, opts) => layerNorm(prog, x, g, be, 1e-6, 'ln', opts), 64 * C * 4);
    expect([ln.whole.dispatches, ln.split.dispatches]).toEqual([1, Math.ceil((B * L) / 64)]); // 64 rows of 64 bytes: aligned for any alignment up to 4096
    expect(Array.from(ln.split.out)).toEqual(Array.from(ln.whole.out));
    // add: ranges of whole copies of the broadcast operand (two batch items here).
    const add = await wholeAndSplit((prog, opts) => addScaled(prog, x, pos, 0.5, 'add', opts), 2 * L * C * 4);
    expect([add.whole.dispatches, add.split.dispatches]).toEqual([1, 2]);
    expect(Array.from(add.split.out)).toEqual(Array.from(add.whole.out));
  });

  it('attention in ranges of batch items, a shared query view bound whole', async () => {
    const { gpu } = await testGpu();
    const [B, H, D, L] = [5, 2, 8, 9];
    const qkv = upload(gpu, [B, L, 3 * H * D], randn(B * L * 3 * H * D, 9));
    const probe = upload(gpu, [1, 1, H * D], randn(H * D, 10));
    const itemBytes = L * 3 * H * D * 4;
    const self = await wholeAndSplit(
      (prog, opts) => attention(prog, { B, H, D, Lq: L, Lk: L, q: heads(qkv, 0), k: heads(qkv, H * D), v: heads(qkv, 2 * H * D), causal: true }, opts),
      2 * itemBytes + 256,
    );
    expect([self.whole.dispatches, self.split.dispatches]).toEqual([1, 3]);
    expect(Array.from(self.split.out)).toEqual(Array.from(self.whole.out));
    const pooled = await wholeAndSplit(
      (prog, opts) => attention(prog, { B, H, D, Lq: 1, Lk: L, q: heads(probe, 0, 0), k: heads(qkv, H * D), v: heads(qkv, 2 * H * D) }, opts),
      itemBytes + 256,
    );
    expect([pooled.whole.dispatches, pooled.split.dispatches]).toEqual([1, B]);
    expect(Array.from(pooled.split.out)).toEqual(Array.from(pooled.whole.out));
  });

  it('refuses rows that cannot fit one binding, naming the tensor and the limit', async () => {
    const { gpu, kernels } = await testGpu();
    const prog = new Program(kernels, 'too wide');
    const x = upload(gpu, [3, 2048], new Float32Array(3 * 2048), 'wide input'); // 8192-byte rows
    const w = upload(gpu, [4, 2048], new Float32Array(4 * 2048), 'w');
    expect(() => linear(prog, x, w, { maxBindingBytes: 4096 })).toThrow(/row\(s\) of 'wide input' \[3,2048\] \(\d+ bytes, the fewest that keep ranges aligned\) exceed the binding limit of 4096 bytes/);
    prog.destroy();
  });
});
