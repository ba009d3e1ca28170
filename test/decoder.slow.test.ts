// The pixel decoder at the released model's size (model_config_siglip_384_rvq8: ch 128,
// ch_mult [1,1,4,4,8], 2 res blocks, attention at 24, decoder_in_channels 1024, 24x24 latent,
// 384 px) with synthetic weights of the real shapes: runs end to end, finite output, and the
// default conv variant (Winograd on CPU adapters) agrees with the implicit-GEMM one.
// About 1.1 TFLOP, so minutes on a CPU adapter: only with DUALTOKEN_SLOW=1.
import { describe, expect, it } from 'vitest';
import { gridSize, parseConfig } from '../src/core/config.js';
import { Program } from '../src/core/program.js';
import { availableVariants, variantsOf } from '../src/ops/choice.js';
import { Weights } from '../src/core/weights.js';
import { decodeFromFeatures, usedByDecoder } from '../src/model/decoder.js';
import { SIGLIP_384_RVQ8 } from '../src/model/presets.js';
import { SyntheticSource } from '../src/model/synthetic.js';
import { relToMax } from './helpers/compare.js';
import { randomArray } from './helpers/cpu-ref-conv.js';
import { runAndRead, testGpu, upload } from './helpers/gpu.js';

describe('pixel decoder at the real size', () => {
  it.skipIf(!process.env.DUALTOKEN_SLOW)(
    'decodes [1, 729, 1152] features to a finite [1, 3, 384, 384] image',
    async () => {
      const { gpu, kernels } = await testGpu();
      const cfg = parseConfig(SIGLIP_384_RVQ8, undefined);
      const weights = new Weights(gpu, new SyntheticSource(cfg));
      await weights.load(usedByDecoder);
      const params = weights.byteLength / 4;
      const L = gridSize(cfg.vision) ** 2;
      const C = cfg.vision.hiddenSize;
      const feats = upload(gpu, [1, L, C], randomArray(L * C, 5, 2), 'postquant_pix');
      const prog = new Program(kernels, 'decoder 384');
      const recon = decodeFromFeatures(prog, weights, cfg, feats);
      const R = cfg.decoder.resolution;
      expect(recon.shape).toEqual([1, 3, R, R]);
      const t0 = performance.now();
      await prog.finalize();
      const t1 = performance.now();
      const [out] = await runAndRead(prog, [recon]);
      const t2 = performance.now();
      console.log(`real-size decoder on ${gpu.describe()}: ${(params / 1e6).toFixed(1)} M params, ${prog.dispatchCount} dispatches, finalize ${(t1 - t0).toFixed(0)} ms, run ${((t2 - t1) / 1000).toFixed(1)} s`);
      let bad = 0;
      let maxAbs = 0;
      for (const v of out) {
        if (!Number.isFinite(v)) bad++;
        else maxAbs = Math.max(maxAbs, Math.abs(v));
      }
      console.log(`recon max |value| ${maxAbs.toFixed(3)}`);
      expect(bad).toBe(0);
      expect(maxAbs).toBeGreaterThan(0);
      prog.destroy();
      weights.destroy();

      // The same decode with the implicit-GEMM conv (no Winograd transforms, float64-checked at
      // 1.5e-6 per conv): the default variant's output may differ from it by f32 noise only.
      const variants = variantsOf(kernels);
      const chosen = variants.forClass('conv2d', 'k3');
      if (chosen !== 'gemm_sg' && availableVariants(gpu, 'conv2d').includes('gemm_sg')) {
        variants.force('conv2d', 'gemm_sg');
        try {
          const w2 = new Weights(gpu, new SyntheticSource(cfg));
          await w2.load(usedByDecoder);
          const p2 = new Program(kernels, 'decoder 384 gemm_sg');
          const [ref] = await runAndRead(p2, [decodeFromFeatures(p2, w2, cfg, feats)]);
          const err = relToMax(out, ref);
          console.log(`real-size decoder: ${chosen} vs gemm_sg rel_to_max ${err.toExponential(2)}`);
          expect(err, `${chosen} vs gemm_sg`).toBeLessThan(1e-4);
          p2.destroy();
          w2.destroy();
        } finally {
          variants.force('conv2d', undefined);
        }
      }
      feats.buffer.destroy();
    },
    3_600_000,
  );
});
