// One device per test file, on whatever adapter the machine has (GPU, else lavapipe / SwiftShader).
import { afterAll } from 'vitest';
import type { Gpu } from '../../src/core/gpu.js';
import { KernelLibrary } from '../../src/core/kernels.js';
import { Program } from '../../src/core/program.js';
import type { Tensor } from '../../src/core/tensor.js';
import { createNodeGpu } from '../../src/node/gpu.js';
import { loadShaders } from '../../src/node/shaders.js';

let shared: Promise<{ gpu: Gpu; kernels: KernelLibrary }> | undefined;

export function testGpu(): Promise<{ gpu: Gpu; kernels: KernelLibrary }> {
  if (!shared) {
    shared = createNodeGpu().then((gpu) => ({ gpu, kernels: new KernelLibrary(gpu, loadShaders()) }));
    afterAll(async () => (await shared)?.gpu.destroy());
  }
  return shared;
}

/** A tensor that owns its buffer, filled from the host (test inputs): the op cases' upload. */
export { upload } from '../../src/ops/case-kit.js';

/** Runs a program and returns the listed tensors as Float32Arrays. */
export async function runAndRead(prog: Program, tensors: Tensor[]): Promise<Float32Array[]> {
  const out = await prog.run(tensors);
  return out.map((b, i) => new Float32Array(b, 0, tensors[i].numel));
}

export { Program };
