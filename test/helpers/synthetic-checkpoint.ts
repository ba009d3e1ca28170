// Synthetic PyTorch checkpoints on disk, written streaming (one storage in memory at a time), in
// the layout of torch.save with pickle protocol 2 (as the official training script's PyTorch 1.13
// writes it): a zip of stored entries `archive/data.pkl`, `archive/data/<key>` (64-byte aligned
// through a local-header extra field, as torch does), `archive/version`, and the top-level dict
// {epoch, name, state_dict: OrderedDict(name -> _rebuild_tensor_v2(...)), optimizer: {}}.
// Only for files under 4 GiB (no ZIP64).
import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { Pickle } from './pickle.js';
import { centralHeader, endRecords, localHeader, type ZipRecord } from './zip.js';

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
  const p = new Pickle(2).emptyDict().mark();
  p.str('epoch').int(1).str('name').str('synthetic').str('state_dict').orderedDict().mark();
  tensors.forEach((t, i) => p.str(t.name).tensor(STORAGE_CLASS[t.dtype], String(i), numel(t.shape), 0, t.shape, contiguousStride(t.shape)));
  p.setItems().str('optimizer').emptyDict();
  return p.setItems().bytes();
}

const ALIGN = 64;

/** torch's local-header extra field ('FB', id 0x4246) that pads an entry's data to 64-byte alignment. */
function alignmentExtra(headerStart: number, nameLength: number): Uint8Array {
  const pad = (ALIGN - ((headerStart + 30 + nameLength + 4) % ALIGN)) % ALIGN;
  const extra = new Uint8Array(4 + pad).fill(0x5a);
  const dv = new DataView(extra.buffer);
  dv.setUint16(0, 0x4246, true);
  dv.setUint16(2, pad, true);
  return extra;
}

/** Writes a torch.save-like checkpoint of `tensors` to `path`, one storage in memory at a time. Returns the file size. */
export async function writeSyntheticCheckpoint(path: string, tensors: SyntheticTensor[]): Promise<number> {
  const handle = await open(path, 'w');
  const utf8 = new TextEncoder();
  const records: ZipRecord[] = [];
  let pos = 0;
  const write = async (bytes: Uint8Array) => {
    for (let done = 0; done < bytes.byteLength; ) {
      const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, pos + done);
      done += bytesWritten;
    }
    pos += bytes.byteLength;
  };
  const entry = async (name: string, data: Uint8Array) => {
    const record = { name: utf8.encode(`archive/${name}`), crc: crc32(data), size: data.byteLength, offset: pos };
    records.push(record);
    await write(localHeader(record, alignmentExtra(pos, record.name.length)));
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
    for (const r of records) await write(centralHeader(r));
    await write(endRecords(records.length, cdStart, pos - cdStart));
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
