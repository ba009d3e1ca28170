// A minimal zip writer for tests: stored entries laid out like torch.save's, optionally in ZIP64
// form (EOCD64 record + locator, 0xFFFFFFFF placeholders resolved by zip64 extra fields) so the
// ZIP64 path can be tested without multi-GB files.

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

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
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

export function buildZip(entries: ZipEntryInput[], opts: ZipOptions = {}): Uint8Array {
  const out = new Out();
  const offsets: number[] = [];
  const utf8 = new TextEncoder();
  for (const e of entries) {
    const name = utf8.encode(e.name);
    const extra = e.localExtra ?? new Uint8Array(0);
    offsets.push(out.length);
    out.u32(0x04034b50).u16(20).u16(0).u16(e.method ?? 0).u16(0).u16(0);
    out.u32(crc32(e.data)).u32(e.data.length).u32(e.data.length).u16(name.length).u16(extra.length);
    out.raw(name).raw(extra).raw(e.data);
  }
  const cdStart = out.length;
  entries.forEach((e, i) => {
    const name = utf8.encode(e.name);
    const big = opts.zip64 === true;
    out.u32(0x02014b50).u16(45).u16(20).u16(0).u16(e.method ?? 0).u16(0).u16(0).u32(crc32(e.data));
    out.u32(big ? 0xffffffff : e.data.length).u32(big ? 0xffffffff : e.data.length);
    out.u16(name.length).u16(big ? 28 : 0).u16(0).u16(0).u16(0).u32(0);
    out.u32(big ? 0xffffffff : offsets[i]).raw(name);
    if (big) out.u16(0x0001).u16(24).u64(e.data.length).u64(e.data.length).u64(offsets[i]);
  });
  const cdSize = out.length - cdStart;
  if (opts.zip64) {
    const eocd64 = out.length;
    out.u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0);
    out.u64(entries.length).u64(entries.length).u64(cdSize).u64(cdStart);
    out.u32(0x07064b50).u32(0).u64(eocd64).u32(1);
    out.u32(0x06054b50).u16(0).u16(0).u16(0xffff).u16(0xffff).u32(0xffffffff).u32(0xffffffff).u16(0);
  } else {
    out.u32(0x06054b50).u16(0).u16(0).u16(entries.length).u16(entries.length).u32(cdSize).u32(cdStart).u16(0);
  }
  return out.result();
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
