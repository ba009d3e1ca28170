// Config: the official config.json with or without the backbone's siglip_config.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKBONE_PRESETS, gridSize, parseConfig } from '../src/core/config.js';
import { SIGLIP_384_RVQ8 } from '../src/model/presets.js';
import { caseDir } from './helpers/golden.js';

const tinyConfig = () => JSON.parse(readFileSync(join(caseDir('tiny'), 'config.json'), 'utf8'));
const tinySiglip = () => JSON.parse(readFileSync(join(caseDir('tiny'), 'siglip_config.json'), 'utf8'));

describe('config', () => {
  it('reads the golden case with its siglip_config.json', () => {
    const cfg = parseConfig(tinyConfig(), tinySiglip());
    expect(cfg.vision).toMatchObject({ hiddenSize: 64, numHeads: 4, numLayers: 4, patchSize: 16, imageSize: 64 });
    expect([cfg.layerShortcut, cfg.layerRecon, cfg.layerSem, cfg.weightShortcut]).toEqual([1, 2, 3, 0.6]);
    expect(cfg.quantPix).toMatchObject({ embedDim: 16, nEmbed: 64, depth: 4 });
    expect(cfg.decoder).toMatchObject({ ch: 32, chMult: [1, 1, 2], latentShape: [16, 16], inChannels: 64 });
  });

  it('needs only the official config for a preset backbone', () => {
    const cfg = parseConfig(SIGLIP_384_RVQ8, undefined);
    expect(cfg.vision).toEqual(BACKBONE_PRESETS['siglip2-so400m-patch14-384']);
    expect(gridSize(cfg.vision)).toBe(27);
    expect(cfg.quantPix.depth).toBe(8);
  });

  it('says what to do for an unknown backbone without siglip_config.json', () => {
    expect(() => parseConfig(tinyConfig(), undefined)).toThrow(/backbone 'siglip_config\.json' is not a built-in preset .*put its siglip_config\.json beside config\.json/);
  });

  it('names the field that is wrong', () => {
    const c = tinyConfig();
    c.rqvaesiglip.layer_sem = 9;
    expect(() => parseConfig(c, tinySiglip())).toThrow(/config\.json: 'layer_sem' must be a layer number in 1\.\.4 \(got 9\)/);
    const d = tinyConfig();
    d.rqvaesiglip.vq_pix.code_shape = [5, 5, 4];
    d.rqvaesiglip.vq_pix.latent_shape = [5, 5, 16];
    expect(() => parseConfig(d, tinySiglip())).toThrow(/vq_pix: code_shape \[5,5,4\] does not match the 4x4 token grid/);
  });

  it('refuses quantizer layouts the engine does not implement', () => {
    const c = tinyConfig();
    c.rqvaesiglip.vq_sem.shared_codebook = false;
    expect(() => parseConfig(c, tinySiglip())).toThrow(/vq_sem: shared_codebook false \(one codebook per depth\) is not supported/);
    const d = tinyConfig();
    d.rqvaesiglip.vq_pix.latent_shape = [4, 4, 8];
    expect(() => parseConfig(d, tinySiglip())).toThrow(/vq_pix: latent_shape \[4,4,8\] must be \[h, w, embed_dim\]/);
  });

  it('accepts a config without a shortcut', () => {
    const c = tinyConfig();
    c.rqvaesiglip.layer_shortcut = null;
    expect(parseConfig(c, tinySiglip()).layerShortcut).toBeNull();
  });
});
