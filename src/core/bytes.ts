// ByteReaders over memory. The Node file reader lives in src/node/file.ts.
import type { ByteReader } from './tensor-source.js';

export class MemoryReader implements ByteReader {
  readonly size: number;
  private readonly bytes: Uint8Array;
  constructor(
    data: ArrayBuffer | Uint8Array,
    readonly label = 'memory',
  ) {
    this.bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    this.size = this.bytes.byteLength;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new Error(`${this.label}: read of ${length} bytes at ${offset} is past the end (${this.size} bytes)`);
    }
    return this.bytes.subarray(offset, offset + length);
  }
}
