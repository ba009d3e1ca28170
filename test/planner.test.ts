// Activation memory planned from lifetimes (Program.planMemory): the golden model is unchanged
// with freed memory poisoned (NaN), a plan that frees one activation a dispatch too early is
// caught by the poisoning, and the planned programs need no more memory than the old pool.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addScaled } from '../src/core/ops.js';
import { NonFiniteError, Program } from '../src/core/program.js';
import { DualToken } from '../src/model/dualtoken.js';
import { loadShaders } from '../src/node/shaders.js';
import { openModelFiles } from '../src/node/load.js';
import { Golden, REL_TO_MAX, caseDir, compareFloat, describe as describeComparison } from './helpers/golden.js';
import { runAndRead, testGpu, upload } from './helpers/gpu.js';

/**
 * allocatedBytes of the tiny golden model's programs with the old pool (best fit among released
 * buffers up to twice the size, ~40 hand-placed release() calls), measured on 2026-12-04 just
 * before the planner replaced it (lavapipe; the figures depend on shapes only). The 384 model's
 * programs at B = 1, recorded with synthetic weights: encode 45692192, decode 477890064.
 */
const POOL_BYTES: Record<number, { encode: number; decode: number }> = {
  1: { encode: 134480, decode: 5712400 },
  2: { encode: 238416, decode: 11375632 },
};

async function loadTiny(): Promise<DualToken> {
  const { gpu } = await testGpu();
  const files = await openModelFiles(join(caseDir('tiny'), 'model.safetensors'));
  try {
    return await DualToken.create(gpu, loadShaders(), files.config, files.source);
  } finally {
    await files.source.close?.();
  }
}

describe('a hand-made program', () => {
  // x; a = 2x (#0); b = a + x (#1); c = a + b = 5x (#2, pinned: read back); d = c + x (#3); e = d + x (#4, pinned).
  // a lives over #0..#2; d may take a's buffer (or b's).
  async function build(opts: { poison: boolean; shorten: boolean }): Promise<{ prog: Program; got: Float32Array }> {
    const { gpu, kernels } = await testGpu();
    const n = 1000;
    const x = upload(gpu, [n], new Float32Array(n).map((_, i) => 1 + (i % 7)), 'x');
    const prog = new Program(kernels, 'hand-made', { poison: opts.poison });
    const a = addScaled(prog, x, x, 1, 'a');
    const b = addScaled(prog, a, x, 1, 'b');
    const c = addScaled(prog, a, b, 1, 'c');
    c.pinned = true;
    const d = addScaled(prog, c, x, 1, 'd');
    const e = addScaled(prog, d, x, 1, 'e');
    e.pinned = true;
    if (opts.shorten) prog.shortenLifetimeForTest(a); // the planner is told a's last use is #1
    await prog.finalize();
    expect(d.buffer, 'd reuses the memory of a or b').toSatisfy((buf) => buf === a.buffer || buf === b.buffer);
    const [got] = await runAndRead(prog, [c]);
    x.buffer.destroy();
    return { prog, got };
  }

  it('computes the right values with poisoning, which fills the freed memory', async () => {
    const { prog, got } = await build({ poison: true, shorten: false });
    expect(prog.planSummary().poisonFills).toBeGreaterThan(0);
    expect(Array.from(got.subarray(0, 7))).toEqual([5, 10, 15, 20, 25, 30, 35]);
    prog.destroy();
  });

  it('a plan that frees an activation one dispatch too early goes unnoticed without poisoning', async () => {
    const { prog, got } = await build({ poison: false, shorten: true });
    expect(Array.from(got.subarray(0, 7))).toEqual([5, 10, 15, 20, 25, 30, 35]);
    prog.destroy();
  });

  it('and gives NaN with poisoning', async () => {
    const { prog, got } = await build({ poison: true, shorten: true });
    expect(got.every(Number.isNaN), `c = ${got.subarray(0, 7)}`).toBe(true);
    prog.destroy();
  });
});

describe('the tiny golden model with freed memory poisoned (DUALTOKEN_POISON=1)', () => {
  let saved: string | undefined;
  beforeAll(() => {
    saved = process.env.DUALTOKEN_POISON;
    process.env.DUALTOKEN_POISON = '1';
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.DUALTOKEN_POISON;
    else process.env.DUALTOKEN_POISON = saved;
  });

  it('encode and decode match the golden outputs', async () => {
    const golden = await Golden.open('tiny');
    const model = await loadTiny();
    const pv = await golden.get('pixel_values');
    const B = pv.shape[0];
    const enc = await model.encode(pv.data as Float32Array, B);
    const dec = await model.decode(enc.pixelCodes, B);
    for (const prog of [model.encoderProgram(B), model.decoderProgram(B)]) {
      const s = prog.planSummary();
      console.log(`${prog.label}: ${s.activations} activations (${s.pinned} pinned) in ${s.sharedBuffers} shared buffers, ${s.bytes} bytes; ${s.poisonFills} NaN fills per run`);
      expect(prog.poison).toBe(true);
      expect(s.poisonFills).toBeGreaterThan(0);
    }
    expect(Array.from(enc.pixelCodes)).toEqual(Array.from((await golden.get('code_pix')).data));
    expect(Array.from(enc.semanticCodes)).toEqual(Array.from((await golden.get('code_sem')).data));
    const failures: string[] = [];
    for (const [name, got] of [['z_q_sem', enc.semanticFeatures], ['pooler_output', enc.embedding], ['recon_from_codes', dec.recon]] as const) {
      const c = compareFloat(`tiny ${name} (poisoned)`, got, await golden.get(name));
      if (!(c.relToMax <= REL_TO_MAX)) failures.push(describeComparison(c));
    }
    expect(failures).toEqual([]);
    model.dispose();
  });

  it("catches a decoder plan that frees a block's output one dispatch too early", async () => {
    const golden = await Golden.open('tiny');
    const model = await loadTiny();
    const codes = (await golden.get('code_pix')).data as Int32Array;
    const B = (await golden.get('pixel_values')).shape[0];
    // decoder.mid.block_1's output is attn_1's input and its proj_out's residual (its last use).
    model.decoderProgram(B).shortenLifetimeForTest('decoder.mid.block_1.conv2');
    await expect(model.decode(codes, B)).rejects.toThrow(NonFiniteError);
    model.dispose();
  });
});

describe('memory', () => {
  it("the tiny model's programs need no more than the old pool did", async () => {
    const model = await loadTiny();
    for (const B of [1, 2]) {
      const encode = model.encoderProgram(B).allocatedBytes;
      const decode = model.decoderProgram(B).allocatedBytes;
      console.log(`tiny B=${B}: encode ${encode} bytes (pool ${POOL_BYTES[B].encode}), decode ${decode} (pool ${POOL_BYTES[B].decode})`);
      expect(encode).toBeLessThanOrEqual(POOL_BYTES[B].encode);
      expect(decode).toBeLessThanOrEqual(POOL_BYTES[B].decode);
      // Finalizing creates exactly the planned buffers.
      await model.encoderProgram(B).finalize();
      expect(model.encoderProgram(B).allocatedBytes).toBe(encode);
    }
    model.dispose();
  });
});
