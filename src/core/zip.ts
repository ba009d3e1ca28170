// The zip container of a torch.save checkpoint (the format used since PyTorch 1.6), over any
// ByteReader (no Node imports): the central directory (ZIP64 included) and the local headers, read
// without reading the whole file. Only stored (uncompressed, unencrypted) entries can be read, as
// torch.save writes them; any other is refused, naming the entry. An entry's bytes are read on demand
// (readWholeEntry, or entryDataStart and then only the span that is needed).
import type { ByteReader } from './tensor-source.js';

const EOCD_SIG = 0x06054b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIG = 0x06064b50;
const ZIP64_EOCD_SIZE = 56;
const CENTRAL_SIG = 0x02014b50;
const CENTRAL_SIZE = 46;
const LOCAL_SIG = 0x04034b50;
const LOCAL_SIZE = 30;
const ZIP64_EXTRA_ID = 0x0001;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const MAX_CENTRAL_DIRECTORY_BYTES = 256 * 1024 * 1024;

export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

interface CentralDirectory {
  offset: number;
  size: number;
  count: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readU64(dv: DataView, at: number, what: string): number {
  const value = dv.getBigUint64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${what} is too large (${value})`);
  return Number(value);
}

export async function readZipDirectory(reader: ByteReader): Promise<Map<string, ZipEntry>> {
  const dir = await findCentralDirectory(reader);
  if (dir.size > MAX_CENTRAL_DIRECTORY_BYTES) {
    throw new Error(`${reader.label}: zip central directory of ${dir.size} bytes is implausibly large`);
  }
  if (dir.offset + dir.size > reader.size) {
    throw new Error(
      `${reader.label}: zip central directory (bytes ${dir.offset}..${dir.offset + dir.size}) lies past the end of the file (${reader.size} bytes); the file is truncated`,
    );
  }
  const bytes = await reader.read(dir.offset, dir.size);
  return parseCentralDirectory(bytes, dir.count, reader.label);
}

async function findCentralDirectory(reader: ByteReader): Promise<CentralDirectory> {
  const tailLength = Math.min(reader.size, EOCD_SIZE + U16_MAX + ZIP64_LOCATOR_SIZE);
  const tail = await reader.read(reader.size - tailLength, tailLength);
  const at = findEocd(tail);
  if (at < 0) throw await notAZipError(reader);
  const dv = view(tail);
  const locator = at - ZIP64_LOCATOR_SIZE;
  if (locator >= 0 && dv.getUint32(locator, true) === ZIP64_LOCATOR_SIG) {
    return readZip64Eocd(reader, readU64(dv, locator + 8, `${reader.label}: ZIP64 end record offset`));
  }
  const dir = { count: dv.getUint16(at + 10, true), size: dv.getUint32(at + 12, true), offset: dv.getUint32(at + 16, true) };
  if (dir.count === U16_MAX || dir.size === U32_MAX || dir.offset === U32_MAX) {
    throw new Error(`${reader.label}: zip end record needs ZIP64 data but the ZIP64 locator is missing (corrupt file)`);
  }
  return dir;
}

/** Position of the end-of-central-directory record in `tail`, searching backwards; -1 if none. */
function findEocd(tail: Uint8Array): number {
  const dv = view(tail);
  for (let i = tail.byteLength - EOCD_SIZE; i >= 0; i--) {
    if (dv.getUint32(i, true) === EOCD_SIG && i + EOCD_SIZE + dv.getUint16(i + 20, true) <= tail.byteLength) return i;
  }
  return -1;
}

async function notAZipError(reader: ByteReader): Promise<Error> {
  const head = await reader.read(0, Math.min(reader.size, 4));
  const startsLikeZip = head.length === 4 && view(head).getUint32(0, true) === LOCAL_SIG;
  const startsLikePickle = head.length >= 2 && head[0] === 0x80 && head[1] <= 5;
  if (startsLikeZip) {
    return new Error(`${reader.label}: truncated checkpoint: the zip end-of-central-directory record is missing (${reader.size} bytes)`);
  }
  if (startsLikePickle) {
    return new Error(
      `${reader.label}: legacy torch.save format (before PyTorch 1.6) is not supported; re-save it with a recent PyTorch`,
    );
  }
  return new Error(`${reader.label}: not a PyTorch checkpoint: no zip end-of-central-directory record found (${reader.size} bytes)`);
}

async function readZip64Eocd(reader: ByteReader, offset: number): Promise<CentralDirectory> {
  if (offset + ZIP64_EOCD_SIZE > reader.size) {
    throw new Error(`${reader.label}: ZIP64 end record at byte ${offset} lies past the end of the file; the file is truncated`);
  }
  const dv = view(await reader.read(offset, ZIP64_EOCD_SIZE));
  if (dv.getUint32(0, true) !== ZIP64_EOCD_SIG) {
    throw new Error(`${reader.label}: no ZIP64 end record at byte ${offset} (corrupt file)`);
  }
  const what = `${reader.label}: ZIP64 end record`;
  return { count: readU64(dv, 32, what), size: readU64(dv, 40, what), offset: readU64(dv, 48, what) };
}

function parseCentralDirectory(bytes: Uint8Array, count: number, label: string): Map<string, ZipEntry> {
  const dv = view(bytes);
  const entries = new Map<string, ZipEntry>();
  let pos = 0;
  for (let i = 0; i < count; i++) {
    if (pos + CENTRAL_SIZE > bytes.byteLength || dv.getUint32(pos, true) !== CENTRAL_SIG) {
      throw new Error(`${label}: zip central directory is corrupt (entry ${i} of ${count} at byte ${pos})`);
    }
    const nameLength = dv.getUint16(pos + 28, true);
    const extraLength = dv.getUint16(pos + 30, true);
    const commentLength = dv.getUint16(pos + 32, true);
    const end = pos + CENTRAL_SIZE + nameLength + extraLength + commentLength;
    if (end > bytes.byteLength) throw new Error(`${label}: zip central directory is corrupt (entry ${i} runs past its end)`);
    const nameBytes = bytes.subarray(pos + CENTRAL_SIZE, pos + CENTRAL_SIZE + nameLength);
    const entry: ZipEntry = {
      name: utf8.decode(nameBytes),
      flags: dv.getUint16(pos + 8, true),
      method: dv.getUint16(pos + 10, true),
      compressedSize: dv.getUint32(pos + 20, true),
      size: dv.getUint32(pos + 24, true),
      localOffset: dv.getUint32(pos + 42, true),
    };
    const extraStart = pos + CENTRAL_SIZE + nameLength;
    applyZip64Extra(entry, bytes.subarray(extraStart, extraStart + extraLength), label);
    entries.set(entry.name, entry);
    pos = end;
  }
  return entries;
}

/** Replaces the 0xFFFFFFFF placeholders of a central entry with the values of its ZIP64 extra field. */
function applyZip64Extra(entry: ZipEntry, extra: Uint8Array, label: string): void {
  const fields = (['size', 'compressedSize', 'localOffset'] as const).filter((f) => entry[f] === U32_MAX);
  if (fields.length === 0) return;
  const dv = view(extra);
  for (let pos = 0; pos + 4 <= extra.byteLength; pos += 4 + dv.getUint16(pos + 2, true)) {
    if (dv.getUint16(pos, true) !== ZIP64_EXTRA_ID) continue;
    const blockEnd = pos + 4 + dv.getUint16(pos + 2, true);
    if (blockEnd > extra.byteLength || pos + 4 + 8 * fields.length > blockEnd) break;
    fields.forEach((f, k) => (entry[f] = readU64(dv, pos + 4 + 8 * k, `${label}: zip entry '${entry.name}' ${f}`)));
    return;
  }
  throw new Error(`${label}: zip entry '${entry.name}' needs a ZIP64 extra field but has none (corrupt file)`);
}

export function requireStored(entry: ZipEntry, label: string): void {
  if (entry.flags & 1) throw new Error(`${label}: zip entry '${entry.name}' is encrypted; refused`);
  if (entry.method !== 0 || entry.compressedSize !== entry.size) {
    throw new Error(
      `${label}: zip entry '${entry.name}' is compressed (method ${entry.method}); torch.save stores entries uncompressed, so it is refused`,
    );
  }
}

/** File offset of an entry's data, from its local header (whose name/extra lengths may differ from the central ones). */
export async function entryDataStart(reader: ByteReader, entry: ZipEntry): Promise<number> {
  const past = (what: string) =>
    new Error(`${reader.label}: ${what} of zip entry '${entry.name}' lies past the end of the file (${reader.size} bytes); the file is truncated`);
  if (entry.localOffset + LOCAL_SIZE > reader.size) throw past('local header');
  const dv = view(await reader.read(entry.localOffset, LOCAL_SIZE));
  if (dv.getUint32(0, true) !== LOCAL_SIG) {
    throw new Error(`${reader.label}: zip entry '${entry.name}' has no local header at byte ${entry.localOffset} (corrupt file)`);
  }
  const start = entry.localOffset + LOCAL_SIZE + dv.getUint16(26, true) + dv.getUint16(28, true);
  if (start + entry.size > reader.size) throw past('data');
  return start;
}

export async function readWholeEntry(reader: ByteReader, entry: ZipEntry, maxBytes: number): Promise<Uint8Array> {
  requireStored(entry, reader.label);
  if (entry.size > maxBytes) {
    throw new Error(`${reader.label}: zip entry '${entry.name}' is ${entry.size} bytes, more than the ${maxBytes} this reader accepts`);
  }
  return reader.read(await entryDataStart(reader, entry), entry.size);
}
