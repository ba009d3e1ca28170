// AttnProjection and its small kernels (mean_heads, mul) against float64 references, on sizes the
// golden cases do not have (widths and head sizes that are no multiple of 4, one token).
import { describe, expect, it } from 'vitest';
import { MemoryReader } from '../src/core/bytes.js';
import { Program } from '../src/core/program.js';
import { meanHeads, mul } from '../src/core/quant-ops.js';
import { encodeSafetensors, openSafetensors } from '../src/core/safetensors.js';
import { Weights } from '../src/core/weights.js';
import { attnProjection, prepareAttnProjection } from '../src/model/attn-projection.js';
import { relToMax } from './helpers/compare.js';
import { randn } from './helpers/cpu-ref.js';
import { testGpu, upload } from './helpers/gpu.js';

type Params = Record<string, { shape: number[]; data: Float32Array }>;

// --- float64 references of the official modules

function layerNormRef(x: ArrayLike<number>, rows: number, C: number, g: Float32Array, b: Float32Array, eps: number): Float64Array {
  const y = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let c = 0; c < C; c++) mean += x[r * C + c] / C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[r * C + c] - mean) ** 2 / C;
    for (let c = 0; c < C; c++) y[r * C + c] = ((x[r * C + c] - mean) / Math.sqrt(v + eps)) * g[c] + b[c];
  }
  return y;
}

/** x [rows, K] @ W[N, K]^T + bias */
function linearRef(x: ArrayLike<number>, rows: number, K: number, W: Float32Array, N: number, bias?: Float32Array): Float64Array {
  const y = new Float64Array(rows * N);
  for (let r = 0; r < rows; r++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) s += x[r * K + k] * W[n * K + k];
      y[r * N + n] = s;
    }
  }
  return y;
}

const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

/** AttnProjection.forward in float64 (the official module, step by step). */
function attnProjectionRef(p: Params, pre: string, x: Float32Array, B: number, L: number, inDim: number, outDim: number, H: number): Float64Array {
  const get = (n: string) => p[`${pre}.${n}`].data;
  const rows = B * L;
  const inner = Math.max(inDim, outDim);
  const hd = inner / H;
  const direct = linearRef(layerNormRef(x, rows, inDim, get('norm3.weight'), get('norm3.bias'), 1e-5), rows, inDim, get('proj.weight'), outDim, get('proj.bias'));
  const bias = new Float32Array([...get('attn.q_bias'), ...get('attn.zero_k_bias'), ...get('attn.v_bias')]);
  const qkv = linearRef(layerNormRef(x, rows, inDim, get('norm1.weight'), get('norm1.bias'), 1e-5), rows, inDim, get('attn.qkv.weight'), 3 * inner, bias);
  const causal = inDim < outDim;
  const heads = new Float64Array(rows * inner); // [B, L, H, hd]
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < L; i++) {
        const q = (j: number, d: number) => qkv[(b * L + j) * 3 * inner + h * hd + d];
        const k = (j: number, d: number) => qkv[(b * L + j) * 3 * inner + inner + h * hd + d];
        const v = (j: number, d: number) => qkv[(b * L + j) * 3 * inner + 2 * inner + h * hd + d];
        const end = causal ? i + 1 : L;
        const s: number[] = [];
        for (let j = 0; j < end; j++) {
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q(i, d) * k(j, d);
          s.push(dot / Math.sqrt(hd));
        }
        const m = Math.max(...s);
        const e = s.map((z) => Math.exp(z - m));
        const sum = e.reduce((a, c) => a + c, 0);
        for (let d = 0; d < hd; d++) {
          let o = 0;
          for (let j = 0; j < end; j++) o += (e[j] / sum) * v(j, d);
          heads[(b * L + i) * inner + h * hd + d] = o;
        }
      }
    }
  }
  let merged: Float64Array = heads;
  if (!causal) {
    merged = new Float64Array(rows * hd); // mean over heads
    for (let r = 0; r < rows; r++) for (let h = 0; h < H; h++) for (let d = 0; d < hd; d++) merged[r * hd + d] += heads[r * inner + h * hd + d] / H;
  }
  const a = linearRef(merged, rows, outDim, get('attn.proj.weight'), outDim, get('attn.proj.bias'));
  const y = direct.map((v, i) => v + a[i]);
  const n = layerNormRef(layerNormRef(y, rows, outDim, get('norm2.weight'), get('norm2.bias'), 1e-5), rows, outDim, get('mlp.norm.weight'), get('mlp.norm.bias'), 1e-6);
  const F = 2 * outDim;
  const g0 = linearRef(n, rows, outDim, get('mlp.w0.weight'), F, get('mlp.w0.bias'));
  const g1 = linearRef(n, rows, outDim, get('mlp.w1.weight'), F, get('mlp.w1.bias'));
  const gated = g0.map((v, i) => geluTanh(v) * g1[i]);
  const m = linearRef(gated, rows, F, get('mlp.w2.weight'), outDim, get('mlp.w2.bias'));
  return y.map((v, i) => v + m[i]);
}

/** Random weights of one AttnProjection with the official names and shapes. */
function randomProjection(pre: string, inDim: number, outDim: number, seed: number): Params {
  const inner = Math.max(inDim, outDim);
  const p: Params = {};
  let s = seed;
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    const data = randn(shape.reduce((a, b) => a * b, 1), s++, scale).map((v) => v + offset);
    p[`${pre}.${name}`] = { shape, data };
  };
  for (const [norm, width] of [['norm1', inDim], ['norm3', inDim], ['norm2', outDim], ['mlp.norm', outDim]] as const) {
    add(`${norm}.weight`, [width], 0.1, 1);
    add(`${norm}.bias`, [width], 0.05);
  }
  add('attn.qkv.weight', [3 * inner, inDim], 1 / Math.sqrt(inDim));
  add('attn.q_bias', [inner], 0.1);
  p[`${pre}.attn.zero_k_bias`] = { shape: [inner], data: new Float32Array(inner) };
  add('attn.v_bias', [inner], 0.1);
  add('attn.proj.weight', [outDim, outDim], 1 / Math.sqrt(outDim));
  add('attn.proj.bias', [outDim], 0.05);
  add('proj.weight', [outDim, inDim], 1 / Math.sqrt(inDim));
  add('proj.bias', [outDim], 0.05);
  add('mlp.w0.weight', [2 * outDim, outDim], 1 / Math.sqrt(outDim));
  add('mlp.w0.bias', [2 * outDim], 0.05);
  add('mlp.w1.weight', [2 * outDim, outDim], 1 / Math.sqrt(outDim));
  add('mlp.w1.bias', [2 * outDim], 0.05);
  add('mlp.w2.weight', [outDim, 2 * outDim], 1 / Math.sqrt(2 * outDim));
  add('mlp.w2.bias', [outDim], 0.05);
  return p;
}

describe('mean_heads and mul', () => {
  it('match float64 references on awkward sizes', async () => {
    const { gpu, kernels } = await testGpu();
    for (const [rows, H, D] of [[7, 5, 6], [3, 3, 16], [1, 1, 5]]) {
      const x = randn(rows * H * D, rows + H + D);
      const b = randn(rows * H * D, 99);
      const prog = new Program(kernels, 'mean_heads');
      const xt = upload(gpu, [rows, H * D], x);
      const bt = upload(gpu, [rows, H * D], b);
      const m = meanHeads(prog, xt, H);
      const p = mul(prog, xt, bt);
      expect(m.shape).toEqual([rows, D]);
      const [mo, po] = await prog.run([m, p]);
      const ref = new Float64Array(rows * D);
      for (let r = 0; r < rows; r++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) ref[r * D + d] += x[(r * H + h) * D + d] / H;
      expect(relToMax(new Float32Array(mo, 0, rows * D), ref)).toBeLessThan(1e-6);
      expect(Array.from(new Float32Array(po, 0, x.length))).toEqual(Array.from(x, (v, i) => Math.fround(v * b[i])));
      prog.destroy();
    }
  });
});

describe('AttnProjection', () => {
  // [in, out, heads, B, L]: C = 30, E = 6 -> 5 heads of 6 (no width a multiple of 4).
  const cases: [number, number, number, number, number][] = [
    [30, 6, 5, 2, 7],
    [6, 30, 5, 2, 7],
    [30, 6, 5, 1, 1],
    [6, 30, 5, 1, 1],
  ];
  for (const [inDim, outDim, H, B, L] of cases) {
    const kind = inDim > outDim ? 'prequant (heads averaged)' : 'postquant (causal, heads concatenated)';
    it(`${kind}: ${inDim} -> ${outDim}, ${H} heads, B=${B} L=${L}`, async () => {
      const { gpu, kernels } = await testGpu();
      const pre = inDim > outDim ? 'prequant_pix' : 'postquant_pix';
      const params = randomProjection(pre, inDim, outDim, 7 * inDim + outDim);
      const file = encodeSafetensors(Object.fromEntries(Object.entries(params).map(([n, t]) => [n, { dtype: 'F32' as const, shape: t.shape, data: t.data }])));
      const weights = new Weights(gpu, await openSafetensors(new MemoryReader(file, 'random projection')));
      await weights.load(() => true);
      await prepareAttnProjection(weights, pre);
      const x = randn(B * L * inDim, 5);
      const prog = new Program(kernels, `attn projection ${inDim}->${outDim}`);
      const y = attnProjection(prog, weights, pre, upload(gpu, [B, L, inDim], x), H);
      expect(y.shape).toEqual([B, L, outDim]);
      const [out] = await prog.run([y]);
      const err = relToMax(new Float32Array(out, 0, B * L * outDim), attnProjectionRef(params, pre, x, B, L, inDim, outDim, H));
      console.log(`${pre} ${inDim}->${outDim} B=${B} L=${L}: rel_to_max ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
      prog.destroy();
      weights.destroy();
    });
  }

  it('rejects a head size the official code would pool adaptively', async () => {
    const { gpu, kernels } = await testGpu();
    const params = randomProjection('prequant_pix', 30, 6, 1);
    const file = encodeSafetensors(Object.fromEntries(Object.entries(params).map(([n, t]) => [n, { dtype: 'F32' as const, shape: t.shape, data: t.data }])));
    const weights = new Weights(gpu, await openSafetensors(new MemoryReader(file, 'random projection')));
    await weights.load(() => true);
    await prepareAttnProjection(weights, 'prequant_pix');
    const prog = new Program(kernels, 'bad heads');
    expect(() => attnProjection(prog, weights, 'prequant_pix', upload(gpu, [1, 2, 30], randn(60, 1)), 3)).toThrow(/adaptive pooling/);
    weights.destroy();
  });
});
