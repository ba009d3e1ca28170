// A lost device: the call in flight rejects with a DeviceLostError (never hangs), later calls
// reject at once with the same class, and the model reloaded on a new device works.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeviceLostError, type Gpu } from '../src/core/gpu.js';
import { DualToken } from '../src/model/dualtoken.js';
import { createNodeGpu } from '../src/node/gpu.js';
import { openModelFiles } from '../src/node/load.js';
import { loadShaders } from '../src/node/shaders.js';
import { Golden, caseDir } from './helpers/golden.js';

async function load(gpu: Gpu): Promise<DualToken> {
  const files = await openModelFiles(join(caseDir('tiny'), 'model.safetensors'));
  return DualToken.create(gpu, loadShaders(), files.config, files.source);
}

/** How a promise settles and how long it took (the test's timeout catches a hang). */
async function outcome(p: Promise<unknown>): Promise<{ ms: number; value?: unknown; error?: unknown }> {
  const start = performance.now();
  try {
    return { value: await p, ms: performance.now() - start };
  } catch (error) {
    return { error, ms: performance.now() - start };
  }
}

function expectLost(error: unknown, what: RegExp): void {
  expect(error).toBeInstanceOf(DeviceLostError);
  expect((error as Error).name).toBe('DeviceLostError');
  expect((error as Error).message).toMatch(what);
}

describe('device loss', () => {
  it('fails the calls in flight and every later call at once; a model reloaded on a new device works', async () => {
    const golden = await Golden.open('tiny');
    const pv = (await golden.get('pixel_values')).data as Float32Array;
    const codes = (await golden.get('code_pix')).data as Int32Array;
    const gpu = await createNodeGpu();
    const model = await load(gpu);
    await model.encode(pv, 2); // recorded and warm
    await model.decode(codes, 2);
    // Lost mid-run: the encode and decode in flight (and one still to record, B=1).
    const inFlight = [model.encode(pv, 2), model.decode(codes, 2), model.encode(pv.subarray(0, pv.length / 2), 1)].map((p: Promise<unknown>) => outcome(p));
    await new Promise((r) => setTimeout(r, 20));
    gpu.device.destroy();
    for (const o of await Promise.all(inFlight)) {
      if (o.error) expectLost(o.error, /the GPU device was destroyed/);
      else expect(o.value).toBeDefined(); // finished before the loss
    }
    expect((await Promise.all(inFlight)).some((o) => o.error)).toBe(true);
    // Later calls: the same class, at once.
    for (const call of [() => model.encode(pv, 2), () => model.decode(codes, 2), () => model.encodeImages([])]) {
      const o = await outcome(call());
      expectLost(o.error, /^(encode B=2|decode B=2|encodeImages): the GPU device was destroyed$/);
      expect(o.ms).toBeLessThan(100);
    }
    model.dispose();
    // A new device: everything works again.
    const fresh = await createNodeGpu();
    const again = await load(fresh);
    expect([...(await again.encode(pv, 2)).pixelCodes]).toEqual([...codes]);
    again.dispose();
    fresh.destroy();
  });

  it('a device lost between calls fails the next one at once', async () => {
    const golden = await Golden.open('tiny');
    const codes = (await golden.get('code_pix')).data as Int32Array;
    const gpu = await createNodeGpu();
    const model = await load(gpu);
    await model.decode(codes, 2);
    gpu.destroy();
    const o = await outcome(model.decode(codes, 2));
    expectLost(o.error, /^decode B=2(: run)?: the GPU device was destroyed$/); // the loss may be reported while the call runs
    expect(o.ms).toBeLessThan(100);
    model.dispose();
  });
});
