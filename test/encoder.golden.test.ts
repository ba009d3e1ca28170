// The DualToken encoder against the official model on both golden cases: every intermediate the
// golden case stores (hidden states, projections, codes, margins, z_q, the semantic
// branch, the head), postquant_pix of z_q_pix, and decoding z_q_pix from the golden codes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe as suite, expect, it } from 'vitest';
import { parseConfig } from '../src/core/config.js';
import { toFloat32 } from '../src/core/dtype.js';
import { Program } from '../src/core/program.js';
import { Weights } from '../src/core/weights.js';
import { embedCodes, encodeImage, postquantPix, prepareEncoderWeights, usedByEncoder } from '../src/model/encoder.js';
import { openSafetensorsFile } from '../src/node/files.js';
import { Golden, GOLDEN_CASES, REL_TO_MAX, caseDir, compareFloat, describe, type GoldenTensor } from './helpers/golden.js';
import { testGpu, upload } from './helpers/gpu.js';

const FLOAT_TAPS = [
  'prequant_shortcut',
  'prequant_pix_raw',
  'prequant_pix',
  'margin_pix',
  'z_q_pix',
  'prequant_sem',
  'margin_sem',
  'z_q_sem_raw',
  'z_q_sem',
  'last_hidden_state',
  'post_layernorm',
  'pooler_output',
  'postquant_pix',
];

/**
 * Codes must be identical; a differing code is only excused (and printed) where the reference's
 * own margin is below 1e-5 of |r|^2 + |w_c|^2, i.e. a float32-level tie.
 */
function compareCodes(name: string, got: Int32Array, ref: GoldenTensor, margin: GoldenTensor, residual: GoldenTensor, codebook: Float32Array): string[] {
  const E = residual.shape[residual.shape.length - 1];
  const failures: string[] = [];
  let differing = 0;
  for (let i = 0; i < ref.data.length; i++) {
    if (got[i] === ref.data[i]) continue;
    differing++;
    let scale = 0;
    for (let e = 0; e < E; e++) scale += residual.data[i * E + e] ** 2 + codebook[ref.data[i] * E + e] ** 2;
    const rel = margin.data[i] / scale;
    const msg = `${name}: selection ${i} (token ${Math.floor(i / ref.shape[3])}, depth ${i % ref.shape[3]}) got code ${got[i]}, reference ${ref.data[i]}; reference margin ${margin.data[i]} = ${rel.toExponential(2)} relative`;
    console.log(msg);
    if (!(rel < 1e-5)) failures.push(msg);
  }
  console.log(`${name.padEnd(28)} [${ref.shape}] ${differing} of ${ref.data.length} codes differ`);
  return failures;
}

for (const name of GOLDEN_CASES) {
  suite(`DualToken encoder, golden case ${name}`, () => {
    it('reproduces every encoder tensor, postquant_pix and decoding from codes', async () => {
      const { gpu, kernels } = await testGpu();
      const dir = caseDir(name);
      const cfg = parseConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'siglip_config.json'), 'utf8')));
      const golden = await Golden.open(name);
      const source = await openSafetensorsFile(join(dir, 'model.safetensors'));
      const weights = new Weights(gpu, source);
      await weights.load((n) => usedByEncoder(n, cfg));
      await prepareEncoderWeights(weights, cfg);
      expect(weights.has('siglip_model.text_model.embeddings.token_embedding.weight')).toBe(false);
      expect(weights.has('quantizer_pix.codebooks.1.weight')).toBe(false);

      const prog = new Program(kernels, `encoder ${name}`, true);
      const pv = await golden.get('pixel_values');
      const pixels = upload(gpu, pv.shape, pv.data as Float32Array, 'pixel_values');
      const out = encodeImage(prog, weights, cfg, pixels);
      postquantPix(prog, weights, cfg, out.zqPix);
      const goldenCodes = await golden.get('code_pix');
      const fromCodes = embedCodes(prog, weights, cfg, upload(gpu, goldenCodes.shape, goldenCodes.data as Int32Array, 'code_pix'));
      fromCodes.pinned = true;

      const names = prog.tapNames();
      const read = await prog.run([...names.map((n) => prog.tapped(n)), fromCodes]);
      const got = new Map(names.map((n, i) => [n, read[i]]));
      const floats = (n: string) => new Float32Array(got.get(n)!, 0, prog.tapped(n).numel);

      const failures: string[] = [];
      const check = async (label: string, values: Float32Array, ref: string) => {
        const c = compareFloat(`${name} ${label}`, values, await golden.get(ref));
        if (!(c.relToMax <= REL_TO_MAX)) failures.push(describe(c));
      };
      for (let i = 0; i <= cfg.vision.numLayers; i++) await check(`hidden_states.${i}`, floats(`hidden_states.${i}`), `hidden_states.${i}`);
      for (const t of FLOAT_TAPS) await check(t, floats(t), t);
      await check('embedCodes(code_pix)', new Float32Array(read[read.length - 1]), 'z_q_pix');
      for (const branch of ['pix', 'sem']) {
        const codebookName = `quantizer_${branch}.codebooks.0.weight`;
        const codebook = toFloat32(await source.read(codebookName), source.info(codebookName)!.dtype, codebookName);
        const codes = new Int32Array(got.get(`code_${branch}`)!, 0, prog.tapped(`code_${branch}`).numel);
        failures.push(...compareCodes(`${name} code_${branch}`, codes, await golden.get(`code_${branch}`), await golden.get(`margin_${branch}`), await golden.get(`rq_residual_${branch}`), codebook));
      }
      expect(failures).toEqual([]);
      prog.destroy();

      // Without taps every intermediate goes back to the pool as soon as it is consumed: the
      // outputs must come out the same.
      const lean = new Program(kernels, `encoder ${name} (no taps)`);
      const o = encodeImage(lean, weights, cfg, pixels);
      const [codePix, codeSem, zqPix, zqSem, pooler] = await lean.run([o.codePix, o.codeSem, o.zqPix, o.zqSem, o.poolerOutput]);
      expect(new Int32Array(codePix)).toEqual(new Int32Array(got.get('code_pix')!));
      expect(new Int32Array(codeSem)).toEqual(new Int32Array(got.get('code_sem')!));
      expect(new Float32Array(zqPix)).toEqual(floats('z_q_pix'));
      expect(new Float32Array(zqSem)).toEqual(floats('z_q_sem'));
      expect(new Float32Array(pooler)).toEqual(floats('pooler_output'));
      lean.destroy();
      weights.destroy();
    }, 300_000); // a cold shader cache on a CPU adapter compiles for minutes
  });
}
