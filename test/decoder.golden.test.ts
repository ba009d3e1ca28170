// The pixel decoder against the official model: from the golden postquant_pix features to
// decoder_input, post_quant_conv, every decoder stage and recon, for both golden cases.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe as suite, expect, it } from 'vitest';
import { parseConfig } from '../src/core/config.js';
import { Program } from '../src/core/program.js';
import { Weights } from '../src/core/weights.js';
import { decodeFromFeatures, usedByDecoder } from '../src/model/decoder.js';
import { openSafetensorsFile } from '../src/node/files.js';
import { Golden, GOLDEN_CASES, REL_TO_MAX, caseDir, compareFloat, describe } from './helpers/golden.js';
import { runAndRead, testGpu, upload } from './helpers/gpu.js';

for (const name of GOLDEN_CASES) {
  suite(`pixel decoder, golden case ${name}`, () => {
    it('reproduces decoder_input .. recon from postquant_pix', async () => {
      const { gpu, kernels } = await testGpu();
      const dir = caseDir(name);
      const cfg = parseConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'siglip_config.json'), 'utf8')));
      const golden = await Golden.open(name);
      const weights = new Weights(gpu, await openSafetensorsFile(join(dir, 'model.safetensors')));
      await weights.load(usedByDecoder);
      const feats = await golden.get('postquant_pix');
      const prog = new Program(kernels, `decoder ${name}`, true);
      decodeFromFeatures(prog, weights, cfg, upload(gpu, feats.shape, feats.data as Float32Array, 'postquant_pix'));
      const levels = cfg.decoder.chMult.map((_, i) => `dec.up.${i}.out`).reverse();
      const names = ['decoder_input', 'post_quant_conv', 'dec.conv_in', 'dec.mid', ...levels, 'recon'];
      expect(prog.tapNames().sort()).toEqual([...names].sort());
      const start = performance.now();
      const got = await runAndRead(prog, names.map((n) => prog.tapped(n)));
      console.log(`decoder ${name}: ${prog.dispatchCount} dispatches, first run (with pipeline compilation) ${(performance.now() - start).toFixed(0)} ms`);
      const failures: string[] = [];
      for (const [i, n] of names.entries()) {
        const c = compareFloat(`${name} ${n}`, got[i], await golden.get(n));
        if (!(c.relToMax <= REL_TO_MAX)) failures.push(describe(c));
      }
      expect(failures).toEqual([]);
      prog.destroy();
      weights.destroy();
    });
  });
}
