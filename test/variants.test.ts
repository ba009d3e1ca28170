// The machinery of kernel variants: parsing --kernel choices, defaults per adapter class, the
// precision modes, delegation, and autotune with its store. (Every variant of every op against
// the float64 references, and the kernels it dispatches: test/ops.test.ts.)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { autotune, adapterKey, type TuneStorage } from '../src/ops/autotune.js';
import { OP_NAMES, VARIANTS, availableVariants, defaultChoice, isCpuAdapter, isFullPrecision, parseKernelChoice, variantsOf, type OpName, type TunedTable } from '../src/ops/choice.js';
import { SPECS } from '../src/ops/specs.js';
import { fileTuneStorage } from '../src/node/autotune-cache.js';
import { testGpu } from './helpers/gpu.js';

describe('choosing variants', () => {
  it('parses --kernel op=variant lists and refuses unknown names', () => {
    expect(parseKernelChoice(['linear=kn_sg', 'attention=lane,conv2d=direct'])).toEqual({ linear: 'kn_sg', attention: 'lane', conv2d: 'direct' });
    expect(() => parseKernelChoice('linear=fast')).toThrow(/no linear variant 'fast'.*tiled/);
    expect(() => parseKernelChoice('matmul=tiled')).toThrow(/no op named 'matmul'/);
    expect(() => parseKernelChoice('linear')).toThrow(/expected op=variant/);
  });

  it('defaults to the subgroup variants on CPU adapters, and to the workgroup-tiled ones on GPUs', async () => {
    const { gpu, kernels } = await testGpu();
    const d = defaultChoice(gpu);
    if (isCpuAdapter(gpu) && gpu.has('subgroups')) expect(d).toEqual({ linear: 'kn_sg', attention: 'sg2', conv2d: 'winograd4', group_norm: 'vec4', rq_search: 'lanes', layer_norm: 'rows', softmax: 'rows' });
    if (!isCpuAdapter(gpu)) expect(d).toEqual({ linear: 'wg_tiled', attention: 'wg', conv2d: 'wg_tiled', group_norm: 'wg', rq_search: 'workgroup', layer_norm: 'wg', softmax: 'wg' });
    for (const op of Object.keys(VARIANTS) as OpName[]) expect(availableVariants(gpu, op)).toContain(d[op]);
    expect(variantsOf(kernels).forClass('linear', 'rows>=64')).toBe(d.linear);
  });

  it("every variant is in some adapter class's default list, or a declared fallback or delegate", () => {
    const kept = new Set<string>();
    for (const op of OP_NAMES) {
      const d = SPECS[op].defaults;
      for (const v of [...d.cpu, ...d.gpu, ...(d.cpuF16 ?? []), ...(d.gpuF16 ?? [])]) kept.add(`${op}/${v}`);
      for (const v of VARIANTS[op]) {
        if (v.fallback) kept.add(`${op}/${v.fallback}`);
        for (const d of Object.values(v.delegates ?? {})) Object.values(d).forEach((x) => kept.add(`${op}/${x}`));
      }
    }
    const orphans = OP_NAMES.flatMap((op) => VARIANTS[op].slice(1).map((v) => `${op}/${v.name}`)).filter((k) => !kept.has(k));
    expect(orphans).toEqual([]);
  });

  it('an override beats the tuned table, which beats the default', async () => {
    const { kernels } = await testGpu();
    const v = variantsOf(kernels);
    v.setTuned({ 'linear/rows<64': 'kn', 'linear/unknown': 'no-such-variant' });
    expect(v.forClass('linear', 'rows<64')).toBe('kn');
    expect(v.forClass('linear', 'rows>=64')).toBe(defaultChoice(kernels.gpu).linear);
    v.force('linear', 'tiled');
    expect(v.forClass('linear', 'rows<64')).toBe('tiled');
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
        expect(v.forClass('linear', 'rows>=64')).toBe(defaultChoice(gpu).linear);
        v.setPrecision('f16');
        expect(v.forClass('linear', 'rows<64')).toBe('kn_sg_f16');
        v.setTuned({ 'conv2d/k3': 'gemm_sg_f16' });
        expect(v.forClass('conv2d', 'k3')).toBe('gemm_sg_f16');
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

  it('the winograd variants serve 3x3 convs and leave 1x1 to gemm_kn (f16: gemm_sg_f16); conv layouts need only agree per kernel size', async (ctx) => {
    const { gpu, kernels } = await testGpu();
    if (!availableVariants(gpu, 'conv2d').includes('winograd')) ctx.skip(); // winograd needs subgroups of 8
    const v = variantsOf(kernels);
    try {
      for (const w of ['winograd', 'winograd4']) {
        v.force('conv2d', w);
        expect([v.forClass('conv2d', 'k3'), v.forClass('conv2d', 'k1')]).toEqual([w, 'gemm_kn']);
        expect(v.singleWeightLayout()).toBe(true); // 'wino' / 'wino4' for 3x3 weights, 1x1 ones as loaded
        v.setPrecision('f16');
        expect([v.forClass('conv2d', 'k3'), v.forClass('conv2d', 'k1')]).toEqual([w, 'gemm_sg_f16']);
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
    expect(variantsOf(kernels).forClass('group_norm', 'all')).toBe(table['group_norm/all']);
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
