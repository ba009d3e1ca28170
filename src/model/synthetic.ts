// Synthetic weights of the real shapes, generated on demand (nothing is stored): benchmarks of
// the full-size model without a checkpoint. Deterministic for a seed; scales like the golden
// cases' (Linear/Conv N(0, 1/fan_in), norm weights 1 + 0.1 N, biases 0.05 N, zero_k_bias 0).
// With a text_config the text tower's tensors are there too. Its token embedding table
// (256000 x 1152 f32 = 1.18 GB at the real size) is generated row by row, each row from its own
// seed, so readRange hands out single rows without ever materialising the table (read() of the
// whole table gives the same rows).
import type { DualTokenConfig } from '../core/config.js';
import { numel, type TensorInfo, type TensorSource } from '../core/tensor-source.js';
import { seededGaussian } from '../core/random.js';
import { imagePathShapes, textShapes } from './shapes.js';
import { TOKEN_EMBEDDING } from './text.js';


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
    this.shapes = new Map([...imagePathShapes(cfg), ...textShapes(cfg)]);
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
    if (name === TOKEN_EMBEDDING) return this.rows(name, shape, 0, shape[0]);
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

  /** Bytes [byteOffset, +byteLength) of a tensor: the token table's rows are generated alone, other tensors are generated whole and sliced. */
  async readRange(name: string, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    const shape = this.shapes.get(name);
    if (!shape) throw new Error(`${this.label}: missing tensor '${name}'`);
    const total = numel(shape) * 4;
    if (!(Number.isInteger(byteOffset) && Number.isInteger(byteLength) && byteOffset >= 0 && byteLength >= 0 && byteOffset + byteLength <= total)) {
      throw new Error(`${this.label}: range [${byteOffset}, +${byteLength}) is outside tensor '${name}' (${total} bytes)`);
    }
    if (name !== TOKEN_EMBEDDING) return (await this.read(name)).slice(byteOffset, byteOffset + byteLength);
    const rowBytes = shape[1] * 4;
    const first = Math.floor(byteOffset / rowBytes);
    const end = Math.ceil((byteOffset + byteLength) / rowBytes);
    const at = byteOffset - first * rowBytes;
    return this.rows(name, shape, first, end).slice(at, at + byteLength);
  }

  /** Rows [first, end) of a [rows, C] table, each N(0, 1/C) from its own seed. */
  private rows(name: string, shape: number[], first: number, end: number): Uint8Array {
    const C = shape[1];
    const out = new Float32Array((end - first) * C);
    const base = hash(name, this.seed);
    for (let r = first; r < end; r++) out.set(seededGaussian(C, (Math.imul(base ^ r, 2654435761) ^ (r >>> 0)) >>> 0 || 1, 0, 1 / Math.sqrt(C)), (r - first) * C);
    return new Uint8Array(out.buffer);
  }
}
