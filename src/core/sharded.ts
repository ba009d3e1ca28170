// Several TensorSources seen as one (a sharded safetensors set); a name in two shards is an error.
import type { TensorInfo, TensorSource } from './tensor-source.js';

export class MergedSource implements TensorSource {
  private readonly owner = new Map<string, TensorSource>();

  constructor(
    readonly label: string,
    private readonly parts: TensorSource[],
  ) {
    for (const part of parts) {
      for (const name of part.names()) {
        const prev = this.owner.get(name);
        if (prev) throw new Error(`${label}: tensor '${name}' is in both ${prev.label} and ${part.label}`);
        this.owner.set(name, part);
      }
    }
  }

  names(): string[] {
    return [...this.owner.keys()];
  }

  info(name: string): TensorInfo | undefined {
    return this.owner.get(name)?.info(name);
  }

  read(name: string): Promise<Uint8Array> {
    const part = this.owner.get(name);
    if (!part) return Promise.reject(new Error(`${this.label}: missing tensor '${name}'`));
    return part.read(name);
  }

  /** A range of the owning shard's tensor (read whole and cut when that shard cannot read ranges). */
  readRange(name: string, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    const part = this.owner.get(name);
    if (!part) return Promise.reject(new Error(`${this.label}: missing tensor '${name}'`));
    if (!part.readRange) return part.read(name).then((b) => b.subarray(byteOffset, byteOffset + byteLength));
    return part.readRange(name, byteOffset, byteLength);
  }

  async close(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.close?.()));
  }
}
