import { readFileSync } from 'node:fs';
import { it } from 'vitest';
import { KernelLibrary } from '../src/core/kernels.js';
import { Program } from '../src/core/program.js';
import { loadShaders } from '../src/node/shaders.js';
import { randn, rqReference } from './helpers/cpu-ref-quant.js';
import { testGpu, upload } from './helpers/gpu.js';

it('variants', async () => {
  const { gpu } = await testGpu();
  const variants = (process.env.RQV ?? 'rq_search,rq_v4,rq_acc').split(',');
  const src: Record<string, string> = { ...loadShaders() };
  for (const v of variants) if (!src[v]) src[v] = readFileSync(`/tmp/rqx/${v}.wgsl`, 'utf8');
  const kernels = new KernelLibrary(gpu, src);
  const T = 729, E = 32, K = 16384, D = 8;
  const x = randn(T * E, 11);
  const w = randn((K + 1) * E, 12, 0.5);
  const n = new Float32Array(K);
  for (let k = 0; k < K; k++) { let s = 0; for (let e = 0; e < E; e++) s += w[k * E + e] ** 2; n[k] = s; }
  const xt = upload(gpu, [T, E], x), wt = upload(gpu, [K + 1, E], w), nt = upload(gpu, [K], n);
  let refCodes: number[] | undefined;
  for (const v of variants) {
    const prog = new Program(kernels, v);
    const codes = prog.alloc([T, D], 'c', 'i32'), zq = prog.alloc([T, E], 'z'), margin = prog.alloc([T, D], 'm'), residual = prog.alloc([T, D, E], 'r');
    prog.dispatch({ kernel: v, defines: { EMBED_DIM: E }, uniforms: { T, K, D }, bind: { x: xt, w: wt, w_norm: nt, codes, z_q: zq, margin, residual }, groups: Math.ceil(T / 64) });
    const times: number[] = [];
    let out: ArrayBuffer[] = [];
    for (let i = 0; i < 4; i++) { const s = performance.now(); out = await prog.run([codes]); times.push(performance.now() - s); }
    const c = Array.from(new Int32Array(out[0], 0, T * D));
    if (!refCodes) refCodes = Array.from(rqReference(x, T, E, w, K, D).codes);
    const diff = c.filter((v, i) => v !== refCodes![i]).length;
    console.log(`${v}: ${times.map((t) => t.toFixed(0)).join(' ')} ms; codes differing ${diff}`);
    prog.destroy();
  }
}, 600_000);
