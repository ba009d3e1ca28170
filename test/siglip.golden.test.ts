// The SigLIP vision tower against the official model: hidden_states.0 .. hidden_states.{layer_sem}
// of both golden cases, fed their pixel_values.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe as suite, expect, it } from 'vitest';
import { parseConfig } from '../src/core/config.js';
import { Program } from '../src/core/program.js';
import { Weights } from '../src/core/weights.js';
import { siglipEmbeddings, siglipEncoderLayer } from '../src/model/siglip.js';
import { openSafetensorsFile } from '../src/node/files.js';
import { Golden, GOLDEN_CASES, REL_TO_MAX, caseDir, compareFloat, describe } from './helpers/golden.js';
import { runAndRead, testGpu, upload } from './helpers/gpu.js';

for (const name of GOLDEN_CASES) {
  suite(`SigLIP encoder, golden case ${name}`, () => {
    it('reproduces hidden_states.0 .. hidden_states.{layer_sem}', async () => {
      const { gpu, kernels } = await testGpu();
      const dir = caseDir(name);
      const cfg = parseConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'siglip_config.json'), 'utf8')));
      const golden = await Golden.open(name);
      const weights = new Weights(gpu, await openSafetensorsFile(join(dir, 'model.safetensors')));
      await weights.load((n) => n.startsWith('siglip_model.vision_model.'));
      const pv = await golden.get('pixel_values');
      const prog = new Program(kernels, `siglip ${name}`);
      const pixels = upload(gpu, pv.shape, pv.data as Float32Array, 'pixel_values');
      const states = [siglipEmbeddings(prog, weights, cfg.vision, pixels)];
      for (let i = 0; i < cfg.layerSem; i++) {
        states[i].pinned = true;
        states.push(siglipEncoderLayer(prog, weights, cfg.vision, i, states[i]));
      }
      const got = await runAndRead(prog, states);
      const failures: string[] = [];
      for (let i = 0; i < states.length; i++) {
        const c = compareFloat(`${name} hidden_states.${i}`, got[i], await golden.get(`hidden_states.${i}`));
        if (!(c.relToMax <= REL_TO_MAX)) failures.push(describe(c));
      }
      expect(failures).toEqual([]);
      prog.destroy();
      weights.destroy();
    });
  });
}
