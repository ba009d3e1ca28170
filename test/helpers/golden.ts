// Golden cases (reference outputs of the official PyTorch code) and tolerance checks that print
// the worst error and where it is.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryReader } from '../../src/core/bytes.js';
import { toFloat32, toInt32 } from '../../src/core/dtype.js';
import { openSafetensors } from '../../src/core/safetensors.js';
import type { TensorSource } from '../../src/core/tensor-source.js';
import { relErr } from './compare.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
export const GOLDEN_CASES = ['tiny', 'tiny-bf16'] as const;
export type GoldenCase = (typeof GOLDEN_CASES)[number];

export function caseDir(name: GoldenCase): string {
  return join(FIXTURES, 'golden', name);
}

/** The golden README's fp32 tolerance: worst |got - ref| / max|ref|. */
export const REL_TO_MAX = 1e-4;

export interface GoldenTensor {
  shape: number[];
  data: Float32Array | Int32Array;
}

export class Golden {
  private constructor(
    readonly name: GoldenCase,
    private readonly src: TensorSource,
  ) {}

  static async open(name: GoldenCase, file = 'expected.safetensors'): Promise<Golden> {
    const path = join(caseDir(name), file);
    return new Golden(name, await openSafetensors(new MemoryReader(readFileSync(path), path)));
  }

  has(name: string): boolean {
    return this.src.info(name) !== undefined;
  }

  async get(name: string): Promise<GoldenTensor> {
    const info = this.src.info(name);
    if (!info) throw new Error(`golden ${this.name}: no tensor '${name}'`);
    const bytes = await this.src.read(name);
    const data = info.dtype === 'I32' || info.dtype === 'I64' ? toInt32(bytes, info.dtype, name) : toFloat32(bytes, info.dtype, name);
    return { shape: info.shape, data };
  }
}

export interface Comparison {
  name: string;
  relToMax: number;
  maxAbs: number;
  maxRef: number;
  worstIndex: number[];
  got: number;
  ref: number;
}

function unravel(i: number, shape: number[]): number[] {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(i % shape[d]);
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/** Compares a float tensor to its reference; logs and returns the worst error. */
export function compareFloat(name: string, got: ArrayLike<number>, ref: GoldenTensor): Comparison {
  if (got.length !== ref.data.length) throw new Error(`${name}: got ${got.length} values, reference [${ref.shape}] has ${ref.data.length}`);
  const e = relErr(got, ref.data);
  const c: Comparison = { name, relToMax: e.rel, maxAbs: e.maxAbs, maxRef: e.maxRef, worstIndex: unravel(e.at, ref.shape), got: e.got, ref: e.ref };
  console.log(`${name.padEnd(28)} [${ref.shape}] worst rel_to_max ${c.relToMax.toExponential(2)} (|err| ${c.maxAbs.toExponential(2)} at [${c.worstIndex}]: got ${c.got}, ref ${c.ref})`);
  return c;
}

export function describe(c: Comparison): string {
  return `${c.name}: rel_to_max ${c.relToMax.toExponential(3)} > tolerance; worst at [${c.worstIndex}] got ${c.got} ref ${c.ref} (max|ref| ${c.maxRef})`;
}
