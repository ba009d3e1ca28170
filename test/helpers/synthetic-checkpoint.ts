// Synthetic PyTorch checkpoints on disk, written streaming (one storage in memory at a time), in
// the layout of torch.save with pickle protocol 2 (as the official training script's PyTorch 1.13
// writes it): a zip of stored entries `archive/data.pkl`, `archive/data/<key>` (64-byte aligned
// through a local-header extra field, as torch does), `archive/version`, and the top-level dict
// {epoch, name, state_dict: OrderedDict(name -> _rebuild_tensor_v2(...)), optimizer: {}}.
// Only for files under 4 GiB (no ZIP64).
import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';

export type StorageDType = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';

const STORAGE_CLASS: Record<StorageDType, string> = {
  F32: 'FloatStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  I32: 'IntStorage',
  I64: 'LongStorage',
};
const ELEM_BYTES: Record<StorageDType, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };

export interface SyntheticTensor {
  name: string;
  dtype: StorageDType;
  shape: number[];
  /** Fills the tensor's raw little-endian bytes (row-major). */
  fill: (bytes: Uint8Array) => void;
}

/** A protocol-2 pickle writer: just the opcodes a torch.save state_dict needs. */
export class Pickle2 {
  private readonly parts: Uint8Array[] = [];
  private static readonly utf8 = new TextEncoder();

  constructor() {
    this.op(0x80, 2);
  }
  op(...bytes: number[]): this {
    this.parts.push(Uint8Array.from(bytes));
    return this;
  }
  private u32(n: number): number[] {
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
  }
  str(s: string): this {
    const b = Pickle2.utf8.encode(s);
    this.op(0x58, ...this.u32(b.length)); // BINUNICODE
    this.parts.push(b);
    return this;
  }
  int(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`Pickle2.int: ${n}`);
    if (n < 0x100) return this.op(0x4b, n); // BININT1
    if (n < 0x10000) return this.op(0x4d, n & 0xff, n >>> 8); // BININT2
    if (n < 0x80000000) return this.op(0x4a, ...this.u32(n)); // BININT
    const bytes: number[] = []; // LONG1, little-endian two's complement
    for (let v = BigInt(n); v > 0n; v >>= 8n) bytes.push(Number(v & 0xffn));
    if (bytes[bytes.length - 1] & 0x80) bytes.push(0);
    return this.op(0x8a, bytes.length, ...bytes);
  }
  ints(ns: number[]): this {
    this.mark();
    for (const n of ns) this.int(n);
    return this.tuple();
  }
  global(module: string, name: string): this {
    this.op(0x63);
    this.parts.push(Pickle2.utf8.encode(`${module}\n${name}\n`));
    return this;
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  emptyTuple(): this {
    return this.op(0x29);
  }
  emptyDict(): this {
    return this.op(0x7d);
  }
  setItems(): this {
    return this.op(0x75);
  }
  reduce(): this {
    return this.op(0x52);
  }
  orderedDict(): this {
    return this.global('collections', 'OrderedDict').emptyTuple().reduce();
  }
  /** _rebuild_tensor_v2(('storage', torch.<Storage>, key, 'cpu', numel), offset, shape, stride, False, OrderedDict()) */
  tensor(dtype: StorageDType, key: string, storageNumel: number, offset: number, shape: number[], stride: number[]): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', STORAGE_CLASS[dtype]).str(key).str('cpu').int(storageNumel).tuple().op(0x51); // BINPERSID
    this.int(offset).ints(shape).ints(stride).op(0x89).orderedDict();
    return this.tuple().reduce();
  }
  bytes(): Uint8Array {
    const total = this.parts.reduce((s, p) => s + p.byteLength, 1);
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    out[at] = 0x2e; // STOP
    return out;
  }
}

function contiguousStride(shape: number[]): number[] {
  const stride = new Array<number>(shape.length);
  for (let i = shape.length - 1, s = 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i];
  }
  return stride;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The data.pkl of a training checkpoint whose state_dict holds `tensors`, storage key = index. */
export function checkpointPickle(tensors: Pick<SyntheticTensor, 'name' | 'dtype' | 'shape'>[]): Uint8Array {
  const p = new Pickle2().emptyDict().mark();
  p.str('epoch').int(1).str('name').str('synthetic').str('state_dict').orderedDict().mark();
  tensors.forEach((t, i) => p.str(t.name).tensor(t.dtype, String(i), numel(t.shape), 0, t.shape, contiguousStride(t.shape)));
  p.setItems().str('optimizer').emptyDict();
  return p.setItems().bytes();
}

const ALIGN = 64;

/** Writes a torch.save-like checkpoint of `tensors` to `path`, one storage in memory at a time. Returns the file size. */
export async function writeSyntheticCheckpoint(path: string, tensors: SyntheticTensor[]): Promise<number> {
  const handle = await open(path, 'w');
  const utf8 = new TextEncoder();
  const central: { name: Uint8Array; crc: number; size: number; offset: number }[] = [];
  let pos = 0;
  const write = async (bytes: Uint8Array) => {
    for (let done = 0; done < bytes.byteLength; ) {
      const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, pos + done);
      done += bytesWritten;
    }
    pos += bytes.byteLength;
  };
  const entry = async (name: string, data: Uint8Array) => {
    const nameBytes = utf8.encode(`archive/${name}`);
    // torch pads the local header with an extra field ('FB', id 0x4246) so the data is 64-byte aligned.
    const headerEnd = pos + 30 + nameBytes.length + 4;
    const pad = (ALIGN - (headerEnd % ALIGN)) % ALIGN;
    const header = new Uint8Array(30 + nameBytes.length + 4 + pad);
    const dv = new DataView(header.buffer);
    const crc = crc32(data);
    dv.setUint32(0, 0x04034b50, true);
    dv.setUint16(4, 20, true);
    dv.setUint32(14, crc, true);
    dv.setUint32(18, data.byteLength, true);
    dv.setUint32(22, data.byteLength, true);
    dv.setUint16(26, nameBytes.length, true);
    dv.setUint16(28, 4 + pad, true);
    header.set(nameBytes, 30);
    dv.setUint16(30 + nameBytes.length, 0x4246, true);
    dv.setUint16(32 + nameBytes.length, pad, true);
    header.fill(0x5a, 34 + nameBytes.length);
    central.push({ name: nameBytes, crc, size: data.byteLength, offset: pos });
    await write(header);
    await write(data);
  };
  try {
    await entry('data.pkl', checkpointPickle(tensors));
    for (const [i, t] of tensors.entries()) {
      const data = new Uint8Array(numel(t.shape) * ELEM_BYTES[t.dtype]);
      t.fill(data);
      await entry(`data/${i}`, data);
    }
    await entry('version', utf8.encode('3\n'));
    const cdStart = pos;
    for (const e of central) {
      const rec = new Uint8Array(46 + e.name.length);
      const dv = new DataView(rec.buffer);
      dv.setUint32(0, 0x02014b50, true);
      dv.setUint16(4, 20, true);
      dv.setUint16(6, 20, true);
      dv.setUint32(16, e.crc, true);
      dv.setUint32(20, e.size, true);
      dv.setUint32(24, e.size, true);
      dv.setUint16(28, e.name.length, true);
      dv.setUint32(42, e.offset, true);
      rec.set(e.name, 46);
      await write(rec);
    }
    const eocd = new Uint8Array(22);
    const dv = new DataView(eocd.buffer);
    dv.setUint32(0, 0x06054b50, true);
    dv.setUint16(8, central.length, true);
    dv.setUint16(10, central.length, true);
    dv.setUint32(12, pos - cdStart, true);
    dv.setUint32(16, cdStart, true);
    await write(eocd);
    if (pos >= 2 ** 32) throw new Error(`${path}: ${pos} bytes needs ZIP64, which this helper does not write`);
    return pos;
  } finally {
    await handle.close();
  }
}

/** A deterministic, cheap fill of float32 values in about [-0.5, 0.5), different per `seed`. */
export function fillF32(seed: number): (bytes: Uint8Array) => void {
  return (bytes) => {
    const f = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    let x = (seed * 0x9e3779b1 + 1) >>> 0;
    for (let i = 0; i < f.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      f[i] = (x >>> 0) / 4294967296 - 0.5;
    }
  };
}

/** The value fillF32(seed) puts at element `index` (for spot checks without re-reading the whole tensor). */
export function valueAt(seed: number, index: number): number {
  let x = (seed * 0x9e3779b1 + 1) >>> 0;
  for (let i = 0; i <= index; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return Math.fround((x >>> 0) / 4294967296 - 0.5);
}
