// The first run's cost on a CPU driver is one compile per pipeline (lavapipe compiles each at its
// first dispatch, ~0.1-2 s): the tiny model's encode and decode must use each kernel in one
// pipeline only, i.e. epilogue flags are uniforms and no placeholder varies with the shapes
// (bench/cold-start.ts times the compiles). Before flags became uniforms linear_kn_sg alone came
// in 11 pipelines here.
import { describe, expect, it } from 'vitest';
import { loadDualToken } from '../src/node/load.js';
import { caseDir } from './helpers/golden.js';

describe('pipelines of a model', () => {
  it('the tiny encode and decode use each kernel in one pipeline', async () => {
    const model = await loadDualToken(caseDir('tiny'));
    try {
      const byKernel = new Map<string, Set<string>>();
      for (const prog of [model.encoderProgram(1), model.encoderProgram(2), model.decoderProgram(1)]) {
        for (const k of prog.kernelInfos()) byKernel.set(k.name, (byKernel.get(k.name) ?? new Set()).add(k.key));
      }
      const several = [...byKernel].filter(([, keys]) => keys.size > 1).map(([name, keys]) => `${name}: ${[...keys].join(' ; ')}`);
      console.log(`${byKernel.size} kernels, ${[...byKernel.values()].reduce((s, k) => s + k.size, 0)} pipelines`);
      expect(several, several.join('\n')).toEqual([]);
    } finally {
      model.dispose();
      model.gpu.destroy();
    }
  });
});
