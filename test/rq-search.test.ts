// rq_search (each variant) and rq_embed against the float64 reference: awkward sizes, ties, the
// padding-row trap, margins, and the released model's size (729 tokens, 16384 x 32 codebook, depth 8).
import { describe, expect, it } from 'vitest';
import { Program } from '../src/core/program.js';
import { rqEmbed } from '../src/core/quant-ops.js';
import { rqSearch, searchCodebookData } from '../src/ops/rq_search/rq_search.js';
import { VARIANTS, variantsOf } from '../src/ops/choice.js';
import { relToMax } from './helpers/compare.js';
import { randn } from './helpers/cpu-ref.js';
import { rqReference } from '../src/ops/rq_search/reference.js';
import { rqEmbedReference } from './helpers/cpu-ref-quant.js';
import { testGpu, upload } from './helpers/gpu.js';

interface GpuRq {
  codes: Int32Array;
  margin: Float32Array;
  /** rq_embed of the codes, as the encoder forms z_q. */
  zq: Float32Array;
  /** Wall milliseconds of the first run (pipeline compilation included). */
  firstMs: number;
  /** With `timed`: the dispatch's time in a later run (GPU timestamps where the adapter has them). */
  kernelMs?: number;
}

/** Runs rq_search (the adapter's default variant, or `variant` forced) and rq_embed of its codes. */
async function runRq(x: Float32Array, T: number, E: number, w: Float32Array, K: number, D: number, opts: { timed?: boolean; variant?: string } = {}): Promise<GpuRq> {
  const { gpu, kernels } = await testGpu();
  const prog = new Program(kernels, `rq T=${T} E=${E} K=${K} D=${D}`);
  variantsOf(kernels).force('rq_search', opts.variant);
  const xt = upload(gpu, [T, E], x, 'x');
  const cb = searchCodebookData(w, [K + 1, E]);
  const rows = upload(gpu, [K, cb.width], cb.rows, 'codebook rows');
  const normSq = upload(gpu, [K], cb.normSq, 'codebook norms');
  const wt = upload(gpu, [K + 1, E], w, 'codebook');
  const r = rqSearch(prog, xt, { rows, normSq }, D);
  variantsOf(kernels).force('rq_search', undefined);
  const zq = rqEmbed(prog, r.codes, wt);
  const start = performance.now();
  const out = await prog.run([r.codes, r.margin, zq]);
  const firstMs = performance.now() - start;
  const kernelMs = opts.timed ? (await prog.profile()).timings.find((t) => t.kernel.startsWith('rq_search'))!.ms : undefined;
  prog.destroy();
  for (const t of [xt, rows, normSq, wt]) t.buffer.destroy();
  return {
    codes: new Int32Array(out[0], 0, T * D),
    margin: new Float32Array(out[1], 0, T * D),
    zq: new Float32Array(out[2], 0, T * E),
    firstMs,
    kernelMs,
  };
}

/**
 * Codes must equal the float64 argmin except at float32-level near ties (printed); margins agree
 * to float32 rounding of the official distance form; z_q to float32 rounding.
 */
function checkAgainstReference(what: string, got: GpuRq, x: Float32Array, T: number, E: number, w: Float32Array, K: number, D: number) {
  const ref = rqReference(x, T, E, w, K, D, got.codes);
  for (const n of ref.nearTies) {
    console.log(`${what}: token ${n.t} depth ${n.d}: code ${n.chosen} vs float64 argmin ${n.best}, distance excess ${n.excess.toExponential(2)} (float32 tolerance ${n.tolerance.toExponential(2)})`);
  }
  expect(ref.nearTies.filter((n) => !(n.excess <= n.tolerance))).toEqual([]);
  expect(Array.from(got.codes)).toEqual(Array.from(ref.codes));
  const badMargins: string[] = [];
  for (let i = 0; i < T * D; i++) {
    const err = Math.abs(got.margin[i] - ref.margin[i]);
    if (K > 1 && !(err <= 1e-5 * ref.scale[i])) badMargins.push(`[${Math.floor(i / D)}, ${i % D}] got ${got.margin[i]} ref ${ref.margin[i]}`);
  }
  expect(badMargins).toEqual([]);
  const zqErr = relToMax(got.zq, ref.zq);
  console.log(`${what}: ${ref.nearTies.length} near ties; z_q rel_to_max ${zqErr.toExponential(2)}; first run ${got.firstMs.toFixed(0)} ms`);
  expect(zqErr).toBeLessThan(1e-6);
  return ref;
}

describe('rq_search', () => {
  // Codes on awkward sizes, every variant: test/ops.test.ts (src/ops/rq_search/cases.ts). Here: margins,
  // z_q, ties, the padding row, bit-for-bit agreement and the released size.
  const variants = VARIANTS.rq_search.map((v) => v.name);
  for (const variant of variants) {
    it(`${variant}: margins and z_q match the float64 reference (T=37 E=13 K=50 D=3)`, async () => {
      const [T, E, K, D] = [37, 13, 50, 3];
      const x = randn(T * E, 1000 + T + E);
      const w = randn((K + 1) * E, 2000 + K + D, 0.6);
      const got = await runRq(x, T, E, w, K, D, { variant });
      const ref = checkAgainstReference(`${variant} T=${T} E=${E} K=${K} D=${D}`, got, x, T, E, w, K, D);
      expect(ref.nearTies.length).toBe(0);
    });
    it(`${variant}: picks the lowest index on ties, never the padding row, and reports margin 0 on a tie`, () => ties(variant));
  }

  it('gives the same codes and margins, bit for bit, with every variant (1000 tokens, 4096 x 32, depth 4)', async () => {
    const [T, E, K, D] = [1000, 32, 4096, 4];
    const x = randn(T * E, 21);
    const w = randn((K + 1) * E, 22, 0.5);
    const runs = [];
    for (const variant of variants) runs.push(await runRq(x, T, E, w, K, D, { variant }));
    for (const r of runs.slice(1)) {
      expect(Array.from(r.codes)).toEqual(Array.from(runs[0].codes));
      expect(Array.from(r.margin)).toEqual(Array.from(runs[0].margin));
    }
  }, 60_000);

  async function ties(variant: string): Promise<void> {
    const T = 6;
    const E = 3;
    const K = 11;
    const D = 3;
    // Codewords with small integers (exact in float32), row 7 duplicating row 2, row 9 duplicating row 4.
    const w = new Float32Array((K + 1) * E);
    const rnd = randn(w.length, 77);
    for (let i = 0; i < w.length; i++) w[i] = Math.round(rnd[i] * 3);
    w.copyWithin(7 * E, 2 * E, 3 * E);
    w.copyWithin(9 * E, 4 * E, 5 * E);
    const x = new Float32Array(T * E);
    x.set(w.subarray(2 * E, 3 * E), 0); // token 0 = row 2 = row 7: code 2, residual 0
    x.set(w.subarray(4 * E, 5 * E), E); // token 1 = row 4 = row 9
    for (let e = 0; e < E; e++) x[2 * E + e] = w[2 * E + e] + w[4 * E + e]; // token 2: two tied pairs in a row
    for (let e = 0; e < E; e++) w[K * E + e] = x[3 * E + e] = 10 + e; // token 3 = the padding row exactly
    x.set(randn(2 * E, 5), 4 * E);
    const got = await runRq(x, T, E, w, K, D, { variant });
    checkAgainstReference(`${variant} ties`, got, x, T, E, w, K, D);
    expect(got.codes[0]).toBe(2);
    expect(got.margin[0]).toBe(0);
    expect(got.codes[D]).toBe(4);
    expect(got.margin[D]).toBe(0);
    expect(Array.from(got.codes)).not.toContain(K);
    expect(got.codes[3 * D]).toBeLessThan(K);
  }

  it('handles the released size (729 tokens, 16384 x 32 codebook, depth 8) without a distance matrix', async () => {
    const T = 729;
    const E = 32;
    const K = 16384;
    const D = 8;
    const x = randn(T * E, 11);
    const w = randn((K + 1) * E, 12, 0.5);
    const got = await runRq(x, T, E, w, K, D, { timed: true });
    console.log(`rq_search ${T} tokens x ${K} codes x ${E} dims x ${D} depths: first run ${got.firstMs.toFixed(0)} ms (with compilation), kernel ${got.kernelMs!.toFixed(0)} ms`);
    const ref = checkAgainstReference('released size', got, x, T, E, w, K, D);
    let minRel = Infinity;
    for (let i = 0; i < T * D; i++) minRel = Math.min(minRel, ref.margin[i] / ref.scale[i]);
    console.log(`released size: smallest float64 margin / (|r|^2 + |w|^2) ${minRel.toExponential(2)}`);
  }, 120_000);
});

describe('rq_embed', () => {
  it('sums codebook rows over depth, padding code included, clamping codes out of range', async () => {
    const { gpu, kernels } = await testGpu();
    const T = 23;
    const D = 5;
    const E = 7;
    const rows = 40;
    const w = randn(rows * E, 3);
    const codes = new Int32Array(T * D);
    for (let i = 0; i < codes.length; i++) codes[i] = (i * 7919) % rows;
    codes[0] = rows - 1; // the padding row
    codes[1] = -3;
    codes[2] = rows + 5;
    const prog = new Program(kernels, 'rq_embed');
    const ct = upload(gpu, [T, D], codes, 'codes');
    const wt = upload(gpu, [rows, E], w, 'codebook');
    const zq = rqEmbed(prog, ct, wt);
    expect(zq.shape).toEqual([T, E]);
    const [out] = await prog.run([zq]);
    expect(relToMax(new Float32Array(out, 0, T * E), rqEmbedReference(codes, T, D, w, rows, E))).toBeLessThan(1e-6);
    prog.destroy();
  });
});
