// Every op module's test cases (src/ops/<op>/cases.ts) through every variant of the op the test
// device can run, forced one at a time: the kernels actually dispatched must be the ones the
// variant's spec states, and the output within the case's bound of the float64 reference (the
// variant's own bound where it is a reduced-precision one). A variant that refuses a case's
// shape must fail loudly when forced, and the automatic choice must fall back.
import { describe, expect, it } from 'vitest';
import { Program } from '../src/core/program.js';
import { OP_NAMES, VARIANTS, availableVariants, served, shapeClass, variantsOf } from '../src/ops/choice.js';
import { variantTolerance } from '../src/ops/autotune.js';
import { OP_CASES } from '../src/ops/index.js';
import type { OpCase } from '../src/ops/types.js';
import { testGpu } from './helpers/gpu.js';

/** The variant that does a call forced to `variant` (its delegate for the case's class), and why it refuses the call, if it does. */
function servedBy(c: OpCase, variant: string): { served: string; refuses?: string } {
  const by = served(c.op, variant, shapeClass(c.op, c.dims), 'f32');
  return { served: by, refuses: VARIANTS[c.op].find((v) => v.name === by)!.refuses?.(c.dims) };
}

async function runCase(c: OpCase, variant: string | undefined): Promise<{ kernels: string[]; err: ReturnType<ReturnType<OpCase['prepare']>['check']> }> {
  const { gpu, kernels } = await testGpu();
  const prepared = c.prepare(gpu);
  const prog = new Program(kernels, `${c.title} [${variant ?? 'auto'}]`);
  const choice = variantsOf(kernels);
  try {
    choice.force(c.op, variant);
    const out = prepared.record(prog);
    choice.force(c.op, undefined);
    const [buf] = await prog.run([out]);
    return { kernels: [...new Set(prog.kernelInfos().map((k) => k.name))], err: prepared.check(buf) };
  } finally {
    choice.force(c.op, undefined);
    prog.destroy();
    prepared.destroy();
  }
}

for (const op of OP_NAMES) {
  describe(`${op}: every variant on the module's test cases`, () => {
    for (const c of OP_CASES[op].tests()) {
      it(c.title, async () => {
        const { gpu, kernels } = await testGpu();
        const variants = availableVariants(gpu, op);
        expect(variants[0], 'the general variant runs everywhere').toBe(VARIANTS[op][0].name);
        for (const variant of variants) {
          const { served: by, refuses } = servedBy(c, variant);
          if (refuses) {
            // Forced, a variant that cannot take the call is an error naming the call and the reason.
            await expect(runCase(c, variant), `${variant} forced on ${c.title}`).rejects.toThrow(`--kernel ${op}=${variant}`);
            continue;
          }
          const run = await runCase(c, variant);
          const want = VARIANTS[op].find((v) => v.name === by)!.kernels;
          const { err } = run;
          expect(run.kernels, `${c.title} [${variant}]: kernels dispatched`).toEqual(want);
          const tol = variantTolerance(c, by);
          expect(err.err, `${c.title} [${variant}]: worst rel_to_max ${err.err.toExponential(2)} at ${err.at} (got ${err.got}, ref ${err.ref}) over ${err.samples} outputs`).toBeLessThanOrEqual(tol);
        }
        // The automatic choice takes every case, falling back where its variant refuses it.
        const chosen = variantsOf(kernels).choose(op, c.dims, () => c.title);
        const auto = await runCase(c, undefined);
        expect(auto.kernels, `${c.title} [auto: ${chosen}]: kernels dispatched`).toEqual(VARIANTS[op].find((v) => v.name === chosen)!.kernels);
        expect(auto.err.err, `${c.title} [auto: ${chosen}]: worst rel_to_max ${auto.err.err.toExponential(2)} at ${auto.err.at}`).toBeLessThanOrEqual(variantTolerance(c, chosen));
      });
    }
  });
}
