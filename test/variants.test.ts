// Every kernel variant (variants.ts) of every op against the float64 CPU references, forced one
// at a time, on shapes that are no multiple of the tiles, of 4 or of the subgroup size; plus the
// machinery: parsing --kernel choices, defaults per adapter class, autotune with its store.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { autotune, adapterKey, type TuneStorage } from '../src/core/autotune.js';
import { conv2d, groupNorm } from '../src/core/conv-ops.js';
import { attention, heads, linear } from '../src/core/ops.js';
import { Program } from '../src/core/program.js';
import { VARIANTS, availableVariants, defaultChoice, isCpuAdapter, isFullPrecision, parseKernelChoice, variantsOf, type OpName, type TunedTable } from '../src/core/variants.js';
import { fileTuneStorage } from '../src/node/autotune-cache.js';
import { relErr, relToMax } from './helpers/compare.js';
import { attentionRef, linearRef, randn } from './helpers/cpu-ref.js';
import { conv2dRef, groupNormRef, randomArray } from './helpers/cpu-ref-conv.js';
import { runAndRead, testGpu, upload } from './helpers/gpu.js';

/**
 * Each variant of `op` the test device can run, recorded with that variant forced, with the
 * tolerance to hold it to: `f32` for the f32 variants, the variant's own stated bound for the
 * reduced-precision ones (e.g. f16 weights), never looser for an f32 variant.
 */
async function eachVariant(op: OpName, body: (variant: string, tol: (f32: number) => number) => Promise<void>): Promise<void> {
  const { kernels } = await testGpu();
  for (const variant of availableVariants(kernels.gpu, op)) {
    const own = VARIANTS[op].find((v) => v.name === variant)?.tolerance;
    variantsOf(kernels).force(op, variant);
    try {
      await body(variant, (f32) => (own !== undefined && own > f32 ? own : f32));
    } finally {
      variantsOf(kernels).force(op, undefined);
    }
  }
}

function check(what: string, got: Float32Array, ref: ArrayLike<number>, tol: number): void {
  const e = relErr(got, ref);
  const msg = `${what}: worst rel_to_max ${e.rel.toExponential(2)} at ${e.at} (got ${e.got}, ref ${e.ref})`;
  expect(e.rel, msg).toBeLessThanOrEqual(tol);
}

describe('linear variants', () => {
  // K % 4 == 0 takes the kn kernels; the others check their fallback to tiled.
  const shapes: [number, number, number][] = [
    [1, 5, 8],
    [3, 1, 4],
    [17, 33, 132],
    [50, 130, 48],
    [70, 9, 36],
    [65, 257, 260],
    [5, 7, 3],
    [1030, 1030, 12], // enough 128x128 tiles for wg_tiled's large tile (ops.wgTile)
  ];
  for (const [M, N, K] of shapes) {
    it(`M=${M} N=${N} K=${K}: every variant, plain / bias+gelu / bias+residual`, async () => {
      const { gpu } = await testGpu();
      const x = randn(M * K, M * 31 + K);
      const w = randn(N * K, N * 17 + K, 1 / Math.sqrt(K));
      const b = randn(N, N + 5);
      const r = randn(M * N, M + N);
      const tx = upload(gpu, [M, K], x);
      const tw = upload(gpu, [N, K], w, 'w');
      const tb = upload(gpu, [N], b);
      const tr = upload(gpu, [M, N], r);
      await eachVariant('linear', async (variant, tol) => {
        for (const mode of ['plain', 'bias+gelu', 'bias+residual'] as const) {
          const { kernels } = await testGpu();
          const prog = new Program(kernels, `linear ${variant}`);
          const y = linear(prog, tx, tw, {
            bias: mode === 'plain' ? undefined : tb,
            act: mode === 'bias+gelu' ? 'gelu_tanh' : 'none',
            residual: mode === 'bias+residual' ? tr : undefined,
          });
          const [got] = await runAndRead(prog, [y]);
          check(`linear ${variant} ${mode} ${M}x${N}x${K}`, got, linearRef(x, w, M, N, K, mode === 'plain' ? undefined : b, mode === 'bias+residual' ? r : undefined, mode === 'bias+gelu'), tol(1e-5));
          prog.destroy();
        }
      });
      for (const t of [tx, tw, tb, tr]) t.buffer.destroy();
    });
  }
});

describe('attention variants', () => {
  const cases = [
    { B: 1, H: 1, D: 4, Lq: 1, Lk: 1, causal: false },
    { B: 2, H: 3, D: 5, Lq: 7, Lk: 7, causal: false },
    { B: 2, H: 3, D: 8, Lq: 9, Lk: 9, causal: false },
    { B: 2, H: 2, D: 16, Lq: 37, Lk: 37, causal: true },
    { B: 1, H: 2, D: 72, Lq: 70, Lk: 70, causal: false },
    { B: 1, H: 2, D: 12, Lq: 130, Lk: 130, causal: true },
    { B: 3, H: 2, D: 8, Lq: 11, Lk: 19, causal: false },
  ];
  for (const c of cases) {
    it(`B=${c.B} H=${c.H} D=${c.D} Lq=${c.Lq} Lk=${c.Lk}${c.causal ? ' causal' : ''}: every variant`, async () => {
      const { gpu } = await testGpu();
      const W = c.H * c.D;
      const q = randn(c.B * c.Lq * W, 1 + W, 2);
      const k = randn(c.B * c.Lk * W, 2 + W, 2);
      const v = randn(c.B * c.Lk * W, 3 + W);
      const [tq, tk, tv] = [upload(gpu, [c.B, c.Lq, W], q), upload(gpu, [c.B, c.Lk, W], k), upload(gpu, [c.B, c.Lk, W], v)];
      const ref = attentionRef(q, k, v, c.B, c.H, c.D, c.Lq, c.Lk, c.causal);
      await eachVariant('attention', async (variant) => {
        const { kernels } = await testGpu();
        const prog = new Program(kernels, `attention ${variant}`);
        const o = attention(prog, { ...c, q: heads(tq), k: heads(tk), v: heads(tv) });
        const [got] = await runAndRead(prog, [o]);
        check(`attention ${variant}`, got, ref, 1e-5);
        prog.destroy();
      });
      for (const t of [tq, tk, tv]) t.buffer.destroy();
    });
  }
  it('reads k and v packed in one [B, L, 3W] buffer (vec4-aligned views): every variant', async () => {
    const { gpu } = await testGpu();
    const B = 2, H = 2, D = 8, L = 21, W = H * D;
    const packed = randn(B * L * 3 * W, 77);
    const split = (part: number) => {
      const out = new Float32Array(B * L * W);
      for (let r = 0; r < B * L; r++) out.set(packed.subarray(r * 3 * W + part * W, r * 3 * W + (part + 1) * W), r * W);
      return out;
    };
    const t = upload(gpu, [B, L, 3 * W], packed);
    const ref = attentionRef(split(0), split(1), split(2), B, H, D, L, L, false);
    await eachVariant('attention', async (variant) => {
      const { kernels } = await testGpu();
      const prog = new Program(kernels, `packed ${variant}`);
      const o = attention(prog, { B, H, D, Lq: L, Lk: L, q: heads(t, 0), k: heads(t, W), v: heads(t, 2 * W) });
      const [got] = await runAndRead(prog, [o]);
      check(`attention packed ${variant}`, got, ref, 1e-5);
      prog.destroy();
    });
    t.buffer.destroy();
  });
});

describe('conv2d variants', () => {
  const cases = [
    { B: 2, Cin: 3, Cout: 5, H: 7, W: 5, K: 3, res: false },
    { B: 1, Cin: 13, Cout: 6, H: 9, W: 19, K: 3, res: true },
    { B: 2, Cin: 8, Cout: 36, H: 5, W: 33, K: 3, res: true },
    { B: 3, Cin: 20, Cout: 12, H: 6, W: 7, K: 3, res: true },
    { B: 1, Cin: 4, Cout: 3, H: 1, W: 1, K: 3, res: false },
    { B: 1, Cin: 9, Cout: 130, H: 3, W: 17, K: 3, res: false },
    { B: 2, Cin: 7, Cout: 9, H: 5, W: 3, K: 1, res: false },
    { B: 1, Cin: 70, Cout: 33, H: 4, W: 18, K: 1, res: true },
    { B: 3, Cin: 12, Cout: 10, H: 4, W: 6, K: 1, res: true }, // gemm_kn's own path, one image per binding (offsets)
    { B: 1, Cin: 5, Cout: 140, H: 48, W: 90, K: 3, res: true }, // wg_tiled's large tile (ops.wgTile)
  ];
  for (const c of cases) {
    it(`${c.K}x${c.K} B${c.B} ${c.Cin}->${c.Cout} @ ${c.H}x${c.W}${c.res ? ' + residual' : ''}: every variant`, async () => {
      const { gpu } = await testGpu();
      let seed = c.Cin * 100 + c.Cout;
      const x = randomArray(c.B * c.Cin * c.H * c.W, seed++);
      const w = randomArray(c.Cout * c.Cin * c.K * c.K, seed++, 1 / Math.sqrt(c.Cin * c.K * c.K));
      const bias = randomArray(c.Cout, seed++, 0.1);
      const residual = c.res ? randomArray(c.B * c.Cout * c.H * c.W, seed++) : undefined;
      const tx = upload(gpu, [c.B, c.Cin, c.H, c.W], x);
      const tw = upload(gpu, [c.Cout, c.Cin, c.K, c.K], w, 'w');
      const tb = upload(gpu, [c.Cout], bias);
      const tr = residual ? upload(gpu, [c.B, c.Cout, c.H, c.W], residual) : undefined;
      const ref = conv2dRef(x, c.B, c.Cin, c.H, c.W, w, c.Cout, c.K, bias, residual);
      await eachVariant('conv2d', async (variant, tol) => {
        const { kernels } = await testGpu();
        const prog = new Program(kernels, `conv2d ${variant}`);
        // A binding limit of one image forces per-image dispatches (batch slices at offsets);
        // Winograd scratch for 3 tiles forces chunks of tiles that straddle rows and images.
        const split = c.B > 1 ? { maxBindingBytes: Math.max(c.Cin, c.Cout) * c.H * c.W * 4 + 256, winogradScratchBytes: 3 * 16 * 4 * Math.max(Math.ceil(c.Cin / 4) * 4, c.Cout) } : {};
        const [got] = await runAndRead(prog, [conv2d(prog, tx, tw, tb, { residual: tr, ...split })]);
        expect(relToMax(got, ref), `conv2d ${variant}`).toBeLessThan(tol(2e-6));
        prog.destroy();
      });
      for (const t of [tx, tw, tb, ...(tr ? [tr] : [])]) t.buffer.destroy();
    });
  }
});

describe('group_norm variants', () => {
  // An offset per channel, so that the centred variance matters; the last case's offset is 30x
  // the spread (the f32 inputs themselves then carry ~1e-6 of the output's size).
  const cases = [
    { B: 2, C: 32, H: 7, W: 5, silu: false, offset: 5, tol: 2e-6 }, // H*W % 4 != 0: vec4 falls back
    { B: 1, C: 64, H: 24, W: 24, silu: true, offset: 5, tol: 2e-6 }, // 1152 values per group: 3 chunks, the last partial
    { B: 3, C: 64, H: 4, W: 5, silu: true, offset: 5, tol: 2e-6 },
    { B: 1, C: 32, H: 2, W: 2, silu: false, offset: 5, tol: 2e-6 },
    { B: 1, C: 64, H: 40, W: 36, silu: false, offset: 100, tol: 1e-5 },
  ];
  for (const c of cases) {
    it(`B${c.B} C${c.C} @ ${c.H}x${c.W}${c.silu ? ' + SiLU' : ''}, offset ${c.offset}: every variant`, async () => {
      const { gpu } = await testGpu();
      const HW = c.H * c.W;
      const x = randomArray(c.B * c.C * HW, c.C + HW, 3).map((v, i) => v + c.offset * Math.sin(Math.floor(i / HW)));
      const gamma = randomArray(c.C, 5).map((v) => 1 + 0.1 * v);
      const beta = randomArray(c.C, 6, 0.1);
      const [tx, tg, tb] = [upload(gpu, [c.B, c.C, c.H, c.W], x), upload(gpu, [c.C], gamma), upload(gpu, [c.C], beta)];
      const ref = groupNormRef(x, c.B, c.C, HW, 32, gamma, beta, 1e-6, c.silu);
      await eachVariant('group_norm', async (variant) => {
        const { kernels } = await testGpu();
        const prog = new Program(kernels, `group_norm ${variant}`);
        const item = c.C * HW * 4;
        const [got] = await runAndRead(prog, [groupNorm(prog, tx, tg, tb, 1e-6, { silu: c.silu, maxBindingBytes: c.B > 1 ? item + 256 : undefined })]);
        expect(relToMax(got, ref), `group_norm ${variant}`).toBeLessThan(c.tol);
        prog.destroy();
      });
      for (const t of [tx, tg, tb]) t.buffer.destroy();
    });
  }
});

describe('choosing variants', () => {
  it('parses --kernel op=variant lists and refuses unknown names', () => {
    expect(parseKernelChoice(['linear=kn_sg', 'attention=lane,conv2d=direct'])).toEqual({ linear: 'kn_sg', attention: 'lane', conv2d: 'direct' });
    expect(() => parseKernelChoice('linear=fast')).toThrow(/no linear variant 'fast'.*tiled/);
    expect(() => parseKernelChoice('matmul=tiled')).toThrow(/no op named 'matmul'/);
    expect(() => parseKernelChoice('linear')).toThrow(/expected op=variant/);
  });

  it('defaults to the subgroup variants on CPU adapters, and to subgroup linear/attention with direct conv and the workgroup search on GPUs', async () => {
    const { gpu, kernels } = await testGpu();
    const d = defaultChoice(gpu);
    if (isCpuAdapter(gpu) && gpu.has('subgroups')) expect(d).toEqual({ linear: 'kn_sg', attention: 'sg2', conv2d: 'winograd4', group_norm: 'vec4', rq_search: 'lanes' });
    if (!isCpuAdapter(gpu) && gpu.has('subgroups')) expect(d).toEqual({ linear: 'kn_sg', attention: 'sg', conv2d: 'direct', group_norm: 'chunked', rq_search: 'workgroup' });
    for (const op of Object.keys(VARIANTS) as OpName[]) expect(availableVariants(gpu, op)).toContain(d[op]);
    expect(variantsOf(kernels).choose('linear', 'rows>=64')).toBe(d.linear);
  });

  it('an override beats the tuned table, which beats the default', async () => {
    const { kernels } = await testGpu();
    const v = variantsOf(kernels);
    v.setTuned({ 'linear/rows<64': 'kn', 'linear/unknown': 'no-such-variant' });
    expect(v.choose('linear', 'rows<64')).toBe('kn');
    expect(v.choose('linear', 'rows>=64')).toBe(defaultChoice(kernels.gpu).linear);
    v.force('linear', 'tiled');
    expect(v.choose('linear', 'rows<64')).toBe('tiled');
    v.force('linear', undefined);
    v.setTuned({});
    expect(() => v.override({ linear: 'fast' })).toThrow(/no linear variant 'fast'/);
  });

  it("precision 'f16' puts the f16-weight variants first and lets tuned tables name them; 'f32' never takes one", async () => {
    const { gpu, kernels } = await testGpu();
    const v = variantsOf(kernels);
    try {
      v.setTuned({ 'linear/rows>=64': 'kn_sg_f16', 'conv2d/k3': 'gemm_sg_f16' });
      if (gpu.has('subgroups')) {
        expect(v.choose('linear', 'rows>=64')).toBe(defaultChoice(gpu).linear);
        v.setPrecision('f16');
        expect(v.choose('linear', 'rows<64')).toBe('kn_sg_f16');
        v.setTuned({ 'conv2d/k3': 'gemm_sg_f16' });
        expect(v.choose('conv2d', 'k3')).toBe('gemm_sg_f16');
        expect(adapterKey(gpu, 'f16')).not.toBe(adapterKey(gpu));
      }
      for (const op of Object.keys(VARIANTS) as OpName[]) {
        v.setPrecision('f32');
        expect(isFullPrecision(op, defaultChoice(gpu)[op]), `${op} default ${defaultChoice(gpu)[op]}`).toBe(true);
      }
      expect(() => v.setPrecision('f8' as 'f32')).toThrow(/precision 'f8'/);
      // Freeing packed originals is safe only while each op reads one weight layout in every shape class.
      expect(v.singleWeightLayout()).toBe(true);
      if (gpu.has('subgroups')) {
        v.setTuned({ 'linear/rows>=64': 'kn_sg', 'linear/rows<64': 'tiled' });
        expect(v.singleWeightLayout()).toBe(false);
        v.force('linear', 'tiled');
        expect(v.singleWeightLayout()).toBe(true);
        v.force('linear', undefined);
      }
    } finally {
      v.setPrecision('f32');
      v.setTuned({});
    }
  });

  it('the winograd variants serve 3x3 convs and leave 1x1 to gemm_kn (f16: gemm_sg_f16); conv layouts need only agree per kernel size', async () => {
    const { gpu, kernels } = await testGpu();
    if (!gpu.has('subgroups')) return; // winograd needs subgroups (checked by availableVariants above)
    const v = variantsOf(kernels);
    try {
      for (const w of ['winograd', 'winograd4']) {
        v.force('conv2d', w);
        expect([v.choose('conv2d', 'k3'), v.choose('conv2d', 'k1')]).toEqual([w, 'gemm_kn']);
        expect(v.singleWeightLayout()).toBe(true); // 'wino' / 'wino4' for 3x3 weights, 1x1 ones as loaded
        v.setPrecision('f16');
        expect([v.choose('conv2d', 'k3'), v.choose('conv2d', 'k1')]).toEqual([w, 'gemm_sg_f16']);
        v.setPrecision('f32');
      }
      v.force('conv2d', undefined);
      // Tuned per class, the default still reachable: one layout per class only where the default is winograd4.
      v.setTuned({ 'conv2d/k3': 'winograd4', 'conv2d/k1': 'gemm_kn' });
      expect(v.singleWeightLayout()).toBe(defaultChoice(gpu).conv2d === 'winograd4');
      v.setTuned({ 'conv2d/k1': 'gemm_sg' }); // 1x1 weights as loaded (the default's delegate, or direct on GPUs) and in 'f32'
      expect(v.singleWeightLayout()).toBe(false);
      v.setTuned({ 'conv2d/k3': 'gemm_sg' }); // 3x3 weights in 'f32' and in the default's layout (never 'f32')
      expect(v.singleWeightLayout()).toBe(false);
    } finally {
      v.force('conv2d', undefined);
      v.setPrecision('f32');
      v.setTuned({});
    }
  });

  it('autotune measures, installs and stores the winners; a stored result is reused without measuring', async () => {
    const { kernels } = await testGpu();
    const saved = new Map<string, TunedTable>();
    const storage: TuneStorage = { load: async (a) => saved.get(a), save: async (a, t) => void saved.set(a, t) };
    const lines: string[] = [];
    const table = await autotune(kernels, { storage, ops: ['group_norm'], reps: 2, log: (l) => lines.push(l) });
    expect(Object.keys(table)).toEqual(['group_norm/all']);
    expect(availableVariants(kernels.gpu, 'group_norm')).toContain(table['group_norm/all']);
    expect(saved.get(adapterKey(kernels.gpu))).toEqual(table);
    expect(variantsOf(kernels).choose('group_norm', 'all')).toBe(table['group_norm/all']);
    lines.length = 0;
    saved.set(adapterKey(kernels.gpu), { 'group_norm/all': 'chunked' });
    expect(await autotune(kernels, { storage, ops: ['group_norm'], log: (l) => lines.push(l) })).toEqual({ 'group_norm/all': 'chunked' });
    expect(lines).toEqual([`autotune: using the stored choice for ${adapterKey(kernels.gpu)}`]);
    variantsOf(kernels).setTuned({});
  });

  it('keeps tuned tables per adapter in a JSON file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dualtoken-tune-'));
    try {
      const path = join(dir, 'sub', 'autotune.json');
      const store = fileTuneStorage(path);
      expect(await store.load('a')).toBeUndefined();
      await store.save('a', { 'linear/rows>=64': 'kn_sg' });
      await store.save('b', { 'linear/rows>=64': 'tiled' });
      expect(await fileTuneStorage(path).load('a')).toEqual({ 'linear/rows>=64': 'kn_sg' });
      expect(JSON.parse(readFileSync(path, 'utf8')).adapters.b.table).toEqual({ 'linear/rows>=64': 'tiled' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
