// Non-finite values are never silent: a NaN / Inf weight is refused at load naming the tensor
// (checked on the GPU), a bad layer_norm_eps at config parse naming the key, and with
// allowNonFinite the call that meets them fails naming the stage (quantizer input, reconstruction).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryReader } from '../src/core/bytes.js';
import { parseConfig, type DualTokenConfig } from '../src/core/config.js';
import { toFloat32 } from '../src/core/dtype.js';
import type { Gpu } from '../src/core/gpu.js';
import { encodeSafetensors, openSafetensors, type TensorToWrite } from '../src/core/safetensors.js';
import { DualToken } from '../src/model/dualtoken.js';
import { createNodeGpu } from '../src/node/gpu.js';
import { loadShaders } from '../src/node/shaders.js';
import { Golden, caseDir } from './helpers/golden.js';

const FC1 = 'siglip_model.vision_model.encoder.layers.0.mlp.fc1.weight';
const CODEBOOK = 'quantizer_pix.codebooks.0.weight';
const CONV_OUT = 'decoder.conv_out.weight';

const tinyJson = (file: string) => JSON.parse(readFileSync(join(caseDir('tiny'), file), 'utf8'));
const config: DualTokenConfig = parseConfig(tinyJson('config.json'), tinyJson('siglip_config.json'));

/** The tiny golden model's tensors (all f32), to be mutated and served from memory. */
async function tinyTensors(): Promise<Record<string, TensorToWrite & { data: Float32Array }>> {
  const src = await openSafetensors(new MemoryReader(readFileSync(join(caseDir('tiny'), 'model.safetensors')), 'model.safetensors'));
  const out: Record<string, TensorToWrite & { data: Float32Array }> = {};
  for (const name of src.names()) {
    const info = src.info(name)!;
    out[name] = { dtype: 'F32', shape: info.shape, data: toFloat32(await src.read(name), info.dtype, name) };
  }
  return out;
}

/** The tiny model with `mutate` applied to its tensors, loaded from memory as 'model.safetensors'. */
async function load(gpu: Gpu, mutate: (t: Record<string, { data: Float32Array }>) => void, allowNonFinite = false): Promise<DualToken> {
  const tensors = await tinyTensors();
  mutate(tensors);
  const source = await openSafetensors(new MemoryReader(encodeSafetensors(tensors), 'model.safetensors'));
  return DualToken.create(gpu, loadShaders(), config, source, { allowNonFinite });
}

const oneInf = (t: Record<string, { data: Float32Array }>) => (t[FC1].data[1234] = Infinity);
const nanCodebook = (t: Record<string, { data: Float32Array }>) => t[CODEBOOK].data.fill(NaN, 16, 48);
const nanDecoder = (t: Record<string, { data: Float32Array }>) => t[CONV_OUT].data.fill(NaN);

let gpu: Gpu;
let pixelValues: Float32Array;
let codes: Int32Array;
beforeAll(async () => {
  gpu = await createNodeGpu();
  const golden = await Golden.open('tiny');
  pixelValues = (await golden.get('pixel_values')).data as Float32Array;
  codes = (await golden.get('code_pix')).data as Int32Array;
});
afterAll(() => gpu.destroy());

describe('non-finite weights are refused at load, naming the tensor', () => {
  it('one Inf in one fc1 weight', async () => {
    await expect(load(gpu, oneInf)).rejects.toThrow(`model.safetensors: tensor '${FC1}' has 1 non-finite value (Inf at index 1234)`);
  });

  it('a NaN codebook', async () => {
    await expect(load(gpu, nanCodebook)).rejects.toThrow(`model.safetensors: tensor '${CODEBOOK}' has 32 non-finite values (32 NaN; the first at index 16)`);
  });

  it('NaN decoder weights', async () => {
    await expect(load(gpu, nanDecoder)).rejects.toThrow(`model.safetensors: tensor '${CONV_OUT}' has 864 non-finite values (864 NaN; the first at index 0)`);
  });

  it('the unchanged model loads and encodes', async () => {
    const model = await load(gpu, () => {});
    const enc = await model.encode(pixelValues, 2);
    expect(enc.pixelCodes.length).toBe(codes.length);
    model.dispose();
  });
});

describe('with allowNonFinite, the call fails naming the stage', () => {
  it('an Inf weight in the tower: encode fails at the pixel quantizer', async () => {
    const model = await load(gpu, oneInf, true);
    await expect(model.encode(pixelValues, 2)).rejects.toThrow(/^encode B=2: non-finite values entering the pixel quantizer \(stage quant_pix\): \d+ non-finite values/);
    model.dispose();
  });

  it('NaN decoder weights: decode fails at the reconstruction', async () => {
    const model = await load(gpu, nanDecoder, true);
    await expect(model.decode(codes, 2)).rejects.toThrow(/^decode B=2: non-finite values in the reconstruction \(stage recon\): 24576 non-finite values \(24576 NaN; the first at index 0\)/);
    model.dispose();
  });

  it('a NaN codebook: decoding its codes fails at the reconstruction', async () => {
    const model = await load(gpu, nanCodebook, true);
    const bad = new Int32Array(codes.length).fill(1); // codebook rows 1 and 2 are NaN
    await expect(model.decode(bad, 2)).rejects.toThrow(/^decode B=2: non-finite values in the reconstruction \(stage recon\)/);
    model.dispose();
  });
});

describe('config values', () => {
  it.each([-1e30, NaN, 0])('layer_norm_eps %s is refused at parse, naming the key', (eps) => {
    const siglip = tinyJson('siglip_config.json');
    siglip.vision_config.layer_norm_eps = eps;
    expect(() => parseConfig(tinyJson('config.json'), siglip)).toThrow(/siglip_config\.json vision_config: 'layer_norm_eps' must be a finite number > 0/);
  });
});
