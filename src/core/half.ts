// float32 -> IEEE half (binary16) with round-to-nearest-even, and bulk conversions between the
// float dtypes of a checkpoint (F32, F16, BF16) on raw little-endian bytes. Browser-safe.
import { halfToFloat } from './dtype.js';
import type { DType } from './tensor-source.js';

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * float32 bits -> half bits, round to nearest even. Overflow (|x| >= 65520) gives +-inf, values
 * under the smallest subnormal (2^-24) round to +-0 or to a subnormal, NaN stays a quiet NaN
 * (top payload bits kept), the sign of zero is kept.
 */
export function f32BitsToHalfBits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return mant ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15; // the half's biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): the value is m * 2^(e - 25) with the implicit bit in m, and a
    // subnormal half is frac * 2^-24, so frac = m >> (1 - e + 13).
    if (e < -10) return sign; // below 2^-25: rounds to zero (float32 subnormals included)
    const m = mant | 0x800000;
    const shift = 14 - e;
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half; // a carry out of the fraction gives the smallest normal, which is right
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // a carry into exponent 31 gives inf
  return sign | half;
}

/** The half nearest to `x` (as a float32 first), round to nearest even; see f32BitsToHalfBits. */
export function floatToHalfBits(x: number): number {
  f32Scratch[0] = x;
  return f32BitsToHalfBits(u32Scratch[0]);
}

/** float32 bits -> bfloat16 bits, round to nearest even, NaN kept quiet (same as dtype.ts floatToBf16Bits). */
function f32BitsToBf16Bits(u: number): number {
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Half bits -> float32 bits (exact). */
function halfBitsToF32Bits(h: number): number {
  f32Scratch[0] = halfToFloat(h);
  return u32Scratch[0];
}

export function isFloatDType(dtype: DType): boolean {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
}

function aligned(bytes: Uint8Array, to: number): Uint8Array {
  return bytes.byteOffset % to === 0 ? bytes : bytes.slice();
}

/**
 * Converts `count` elements starting at element `start` of `src` (raw `from` bytes) into `out`
 * (raw `to` bytes, at its start). Both dtypes must be float dtypes; `out` must hold
 * count * bytes(to). Returns the bytes written.
 */
export function convertFloatElements(src: Uint8Array, from: DType, to: DType, start: number, count: number, out: Uint8Array): number {
  const outBytes = count * (to === 'F32' ? 4 : 2);
  if (out.byteLength < outBytes) throw new Error(`convertFloatElements: output of ${out.byteLength} bytes, ${outBytes} needed`);
  const inSize = from === 'F32' ? 4 : 2;
  const chunk = aligned(src.subarray(start * inSize, (start + count) * inSize), inSize);
  if (chunk.byteLength !== count * inSize) throw new Error(`convertFloatElements: elements ${start}..${start + count} lie past the end of the input`);
  if (from === to) {
    out.set(chunk);
    return outBytes;
  }
  const o = aligned(out, 4);
  // Reads of float32 bits, whatever the source dtype.
  const in32 = from === 'F32' ? new Uint32Array(chunk.buffer, chunk.byteOffset, count) : undefined;
  const in16 = from !== 'F32' ? new Uint16Array(chunk.buffer, chunk.byteOffset, count) : undefined;
  const bitsAt = from === 'F32' ? (i: number) => in32![i] : from === 'BF16' ? (i: number) => in16![i] << 16 : (i: number) => halfBitsToF32Bits(in16![i]);
  if (to === 'F32') {
    const w = new Uint32Array(o.buffer, o.byteOffset, count);
    if (from === 'BF16') for (let i = 0; i < count; i++) w[i] = in16![i] << 16;
    else for (let i = 0; i < count; i++) w[i] = bitsAt(i);
  } else {
    const w = new Uint16Array(o.buffer, o.byteOffset, count);
    if (to === 'BF16') {
      if (from === 'F32') for (let i = 0; i < count; i++) w[i] = f32BitsToBf16Bits(in32![i]);
      else for (let i = 0; i < count; i++) w[i] = f32BitsToBf16Bits(bitsAt(i));
    } else if (from === 'F32') {
      for (let i = 0; i < count; i++) w[i] = f32BitsToHalfBits(in32![i]);
    } else {
      for (let i = 0; i < count; i++) w[i] = f32BitsToHalfBits(bitsAt(i));
    }
  }
  if (o !== out) out.set(o.subarray(0, outBytes));
  return outBytes;
}
