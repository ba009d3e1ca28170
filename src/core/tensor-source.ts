// A named collection of tensors, read lazily: safetensors files, PyTorch checkpoints,
// in-memory buffers and URLs all implement it, so the model never knows where weights live.

export type DType = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';

export const DTYPE_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Bytes of the tensor's data, = product(shape) * DTYPE_BYTES[dtype]. */
  byteLength: number;
}

export interface TensorSource {
  /** What the tensors come from (a file path or URL), used in every error message. */
  readonly label: string;
  names(): string[];
  info(name: string): TensorInfo | undefined;
  /** The tensor's raw little-endian bytes, contiguous in row-major order. */
  read(name: string): Promise<Uint8Array>;
  /**
   * Bytes [byteOffset, byteOffset + byteLength) of the tensor's data, without reading the rest
   * (the text tower reads single rows of its 1.18 GB token embedding table so). Optional:
   * sources that cannot (a PyTorch checkpoint) leave it out and callers read the whole tensor.
   */
  readRange?(name: string, byteOffset: number, byteLength: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/** Random access to bytes: a file on disk, an ArrayBuffer, or a URL with Range requests. */
export interface ByteReader {
  readonly label: string;
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
