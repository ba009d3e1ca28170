// The image-path tensor list derived from a config is exactly what the official model saves.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/core/config.js';
import { imagePathShapes } from '../src/model/shapes.js';
import { SyntheticSource } from '../src/model/synthetic.js';
import { openSafetensorsFile } from '../src/node/files.js';
import { GOLDEN_CASES, caseDir } from './helpers/golden.js';

describe('official tensor shapes', () => {
  for (const name of GOLDEN_CASES) {
    it(`match every image-path tensor of ${name}/model.safetensors`, async () => {
      const dir = caseDir(name);
      const cfg = parseConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'siglip_config.json'), 'utf8')));
      const st = await openSafetensorsFile(join(dir, 'model.safetensors'));
      const actual = new Map(st.names().filter((n) => !n.startsWith('siglip_model.text_model.') && !n.startsWith('siglip_model.logit_')).map((n) => [n, st.info(n)!.shape]));
      const derived = imagePathShapes(cfg);
      expect([...derived.keys()].sort()).toEqual([...actual.keys()].sort());
      for (const [n, shape] of derived) expect(shape, n).toEqual(actual.get(n));
      await st.close?.();
    });
  }

  it('gives deterministic synthetic weights of those shapes', async () => {
    const dir = caseDir('tiny');
    const cfg = parseConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'siglip_config.json'), 'utf8')));
    const a = new SyntheticSource(cfg, 7);
    const b = new SyntheticSource(cfg, 7);
    const n = 'decoder.conv_in.weight';
    expect(a.info(n)).toEqual({ name: n, dtype: 'F32', shape: [64, 64, 3, 3], byteLength: 64 * 64 * 9 * 4 });
    expect(await a.read(n)).toEqual(await b.read(n));
    const norm = new Float32Array((await a.read('decoder.norm_out.weight')).buffer);
    expect(Math.abs(norm.reduce((s, v) => s + v, 0) / norm.length - 1)).toBeLessThan(0.1);
    expect(new Float32Array((await a.read('prequant_pix.attn.zero_k_bias')).buffer).every((v) => v === 0)).toBe(true);
  });
});
