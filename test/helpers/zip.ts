// A minimal zip writer for tests: stored entries laid out like torch.save's, optionally in ZIP64
// form (EOCD64 record + locator, 0xFFFFFFFF placeholders resolved by zip64 extra fields) so the
// ZIP64 path can be tested without multi-GB files. Its record writers also serve the streaming
// writer of large synthetic checkpoints (synthetic-checkpoint.ts). CRCs come from Node's native
// zlib.crc32 (several times faster than src/core/image.ts's browser-safe one on a 1 GB checkpoint).
import { crc32 } from 'node:zlib';

const utf8 = new TextEncoder();

export interface ZipEntryInput {
  name: string;
  data: Uint8Array;
  /** Compression method written in the headers (the data is stored as given either way). */
  method?: number;
  /** Extra field of the local header only, e.g. torch's alignment padding. */
  localExtra?: Uint8Array;
}

export interface ZipOptions {
  zip64?: boolean;
}

/** What the headers of one stored entry record; `offset` is where its local header starts. */
export interface ZipRecord {
  name: Uint8Array;
  crc: number;
  size: number;
  offset: number;
  method?: number;
}

class Out {
  private bytes: number[] = [];
  get length(): number {
    return this.bytes.length;
  }
  u16(v: number): this {
    this.bytes.push(v & 0xff, (v >>> 8) & 0xff);
    return this;
  }
  u32(v: number): this {
    return this.u16(v & 0xffff).u16(Math.floor(v / 0x10000) & 0xffff);
  }
  u64(v: number): this {
    return this.u32(v % 0x100000000).u32(Math.floor(v / 0x100000000));
  }
  raw(data: Uint8Array): this {
    for (const b of data) this.bytes.push(b);
    return this;
  }
  result(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** The local header of an entry (its data follows it), with `extra` as its extra field. */
export function localHeader(e: ZipRecord, extra: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Out().u32(0x04034b50).u16(20).u16(0).u16(e.method ?? 0).u16(0).u16(0);
  return out.u32(e.crc).u32(e.size).u32(e.size).u16(e.name.length).u16(extra.length).raw(e.name).raw(extra).result();
}

/** The central directory record of an entry; with `zip64`, sizes and offset live in a ZIP64 extra field. */
export function centralHeader(e: ZipRecord, zip64 = false): Uint8Array {
  const out = new Out().u32(0x02014b50).u16(45).u16(20).u16(0).u16(e.method ?? 0).u16(0).u16(0).u32(e.crc);
  out.u32(zip64 ? 0xffffffff : e.size).u32(zip64 ? 0xffffffff : e.size);
  out.u16(e.name.length).u16(zip64 ? 28 : 0).u16(0).u16(0).u16(0).u32(0);
  out.u32(zip64 ? 0xffffffff : e.offset).raw(e.name);
  if (zip64) out.u16(0x0001).u16(24).u64(e.size).u64(e.size).u64(e.offset);
  return out.result();
}

/** The end records of a zip whose central directory of `count` entries is `cdSize` bytes at `cdStart`. */
export function endRecords(count: number, cdStart: number, cdSize: number, zip64 = false): Uint8Array {
  const out = new Out();
  if (!zip64) return out.u32(0x06054b50).u16(0).u16(0).u16(count).u16(count).u32(cdSize).u32(cdStart).u16(0).result();
  const eocd64 = cdStart + cdSize;
  out.u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0);
  out.u64(count).u64(count).u64(cdSize).u64(cdStart);
  out.u32(0x07064b50).u32(0).u64(eocd64).u32(1);
  return out.u32(0x06054b50).u16(0).u16(0).u16(0xffff).u16(0xffff).u32(0xffffffff).u32(0xffffffff).u16(0).result();
}

export function buildZip(entries: ZipEntryInput[], opts: ZipOptions = {}): Uint8Array {
  const out = new Out();
  const records = entries.map((e) => {
    const record = { name: utf8.encode(e.name), crc: crc32(e.data), size: e.data.length, offset: out.length, method: e.method };
    out.raw(localHeader(record, e.localExtra)).raw(e.data);
    return record;
  });
  const cdStart = out.length;
  for (const r of records) out.raw(centralHeader(r, opts.zip64));
  return out.raw(endRecords(records.length, cdStart, out.length - cdStart, opts.zip64)).result();
}

export interface ZipListing {
  name: string;
  dataStart: number;
  size: number;
}

/** Lists the entries of a small, non-ZIP64-sized zip with no comment, with where each one's data lies. */
export function listZip(zip: Uint8Array): ZipListing[] {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const eocd = zip.length - 22;
  const count = dv.getUint16(eocd + 10, true);
  const entries: ZipListing[] = [];
  for (let i = 0, pos = dv.getUint32(eocd + 16, true); i < count; i++) {
    const nameLength = dv.getUint16(pos + 28, true);
    const local = dv.getUint32(pos + 42, true);
    entries.push({
      name: new TextDecoder().decode(zip.subarray(pos + 46, pos + 46 + nameLength)),
      size: dv.getUint32(pos + 24, true),
      dataStart: local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true),
    });
    pos += 46 + nameLength + dv.getUint16(pos + 30, true) + dv.getUint16(pos + 32, true);
  }
  return entries;
}
