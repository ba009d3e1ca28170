// Conversions from the stored dtypes to the float32 the kernels take.
import type { DType } from './tensor-source.js';

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half -> float32 (exact: every half is a float32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function viewOf<T>(bytes: Uint8Array, bytesPer: number, make: (b: ArrayBuffer, o: number, n: number) => T): T {
  // Typed views need aligned offsets; copy when the slice is not aligned.
  const aligned = bytes.byteOffset % bytesPer === 0 ? bytes : bytes.slice();
  return make(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.byteLength / bytesPer);
}

/** Raw little-endian bytes of `dtype` -> Float32Array. BF16 and F16 widen exactly. */
export function toFloat32(bytes: Uint8Array, dtype: DType, label: string): Float32Array {
  switch (dtype) {
    case 'F32':
      return viewOf(bytes, 4, (b, o, n) => new Float32Array(b, o, n));
    case 'BF16': {
      const src = viewOf(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
      const out = new Float32Array(src.length);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
      return out;
    }
    case 'F16': {
      const src = viewOf(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]);
      return out;
    }
    default:
      throw new Error(`${label}: dtype ${dtype} cannot be used as a float tensor`);
  }
}

/** Raw bytes of an integer dtype -> Int32Array (I64 values must fit in int32). */
export function toInt32(bytes: Uint8Array, dtype: DType, label: string): Int32Array {
  if (dtype === 'I32') return viewOf(bytes, 4, (b, o, n) => new Int32Array(b, o, n));
  if (dtype === 'I64') {
    const src = viewOf(bytes, 8, (b, o, n) => new BigInt64Array(b, o, n));
    const out = new Int32Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (v > 2147483647n || v < -2147483648n) throw new Error(`${label}: int64 value ${v} at index ${i} does not fit in int32`);
      out[i] = Number(v);
    }
    return out;
  }
  throw new Error(`${label}: dtype ${dtype} is not an integer dtype`);
}

/** float32 -> bfloat16 bits, round to nearest even (NaN kept quiet). */
export function floatToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0];
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
