// Synthetic weights of the real shapes, generated on demand (nothing is stored): benchmarks of
// the full-size model without a checkpoint. Deterministic for a seed; scales like the golden
// cases' (Linear/Conv N(0, 1/fan_in), norm weights 1 + 0.1 N, biases 0.05 N, zero_k_bias 0).
import type { DualTokenConfig } from '../core/config.js';
import { numel, type TensorInfo, type TensorSource } from '../core/tensor-source.js';
import { seededGaussian } from '../core/random.js';
import { imagePathShapes } from './shapes.js';


function hash(name: string, seed: number): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

export class SyntheticSource implements TensorSource {
  readonly label: string;
  private readonly shapes: Map<string, number[]>;

  constructor(
    cfg: DualTokenConfig,
    private readonly seed = 1234,
  ) {
    this.shapes = imagePathShapes(cfg);
    this.label = `synthetic weights (seed ${seed})`;
  }

  names(): string[] {
    return [...this.shapes.keys()];
  }

  info(name: string): TensorInfo | undefined {
    const shape = this.shapes.get(name);
    return shape && { name, dtype: 'F32', shape, byteLength: numel(shape) * 4 };
  }

  async read(name: string): Promise<Uint8Array> {
    const shape = this.shapes.get(name);
    if (!shape) throw new Error(`${this.label}: missing tensor '${name}'`);
    const n = numel(shape);
    const seed = hash(name, this.seed);
    let data: Float32Array;
    if (name.endsWith('zero_k_bias')) data = new Float32Array(n);
    else if (shape.length === 1 && /norm[^.]*\.weight$/.test(name)) data = seededGaussian(n, seed, 1, 0.1);
    else if (shape.length === 1 || name.endsWith('_bias')) data = seededGaussian(n, seed, 0, 0.05);
    else if (name.includes('.codebooks.')) data = seededGaussian(n, seed, 0, 1);
    else data = seededGaussian(n, seed, 0, 1 / Math.sqrt(n / shape[0])); // fan_in = numel / out
    return new Uint8Array(data.buffer);
  }
}
