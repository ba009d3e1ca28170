// The encoder at the released model's size (siglip2-so400m-patch14-384, 27 layers, 729 tokens)
// with synthetic weights, at a batch whose activations exceed a 128 MiB binding (the MLP's hidden
// state is 12.5 MB per image: 200 MB at B = 16): every op binds them in ranges (split.ts), the
// run is finite and item 0's codes equal those of the same image encoded alone.
// About 16 x 0.25 TFLOP, so ~8 minutes on a 2-core CPU adapter: only with DUALTOKEN_SLOW=1.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/core/config.js';
import { Program } from '../src/core/program.js';
import { Weights } from '../src/core/weights.js';
import { encodeImage, prepareEncoderWeights, usedByEncoder, usedByPrepare } from '../src/model/encoder.js';
import { SIGLIP_384_RVQ8 } from '../src/model/presets.js';
import { SyntheticSource } from '../src/model/synthetic.js';
import { randomArray } from './helpers/cpu-ref-conv.js';
import { testGpu, upload } from './helpers/gpu.js';

const B = 16;

describe('encoder at the real size', () => {
  it.skipIf(!process.env.DUALTOKEN_SLOW)(
    `encodes B = ${B} at 384 px with activations over the binding limit`,
    async () => {
      const { gpu, kernels } = await testGpu();
      const cfg = parseConfig(SIGLIP_384_RVQ8, undefined);
      const weights = new Weights(gpu, new SyntheticSource(cfg));
      await weights.load((n) => usedByEncoder(n, cfg), undefined, (n) => usedByPrepare(n, cfg));
      await prepareEncoderWeights(weights, cfg);
      const S = cfg.vision.imageSize;
      const item = S * S * 3;
      const pixels = randomArray(B * item, 11, 1);
      const run = async (n: number) => {
        const prog = new Program(kernels, `encode 384 B=${n}`);
        const input = upload(gpu, [n, 3, S, S], pixels.subarray(0, n * item), 'pixel_values');
        const out = encodeImage(prog, weights, cfg, input);
        const t0 = performance.now();
        const [pix, sem, pooled] = await prog.run([out.codePix, out.codeSem, out.poolerOutput]);
        console.log(`encode 384 B=${n} on ${gpu.describe()}: ${prog.dispatchCount} dispatches, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        prog.destroy();
        input.buffer.destroy();
        return { pix: new Int32Array(pix), sem: new Int32Array(sem), pooled: new Float32Array(pooled) };
      };
      const big = await run(B);
      expect(big.pooled.every(Number.isFinite)).toBe(true);
      const one = await run(1);
      expect(Array.from(big.pix.subarray(0, one.pix.length))).toEqual(Array.from(one.pix));
      expect(Array.from(big.sem.subarray(0, one.sem.length))).toEqual(Array.from(one.sem));
      weights.destroy();
    },
    1_800_000,
  );
});
