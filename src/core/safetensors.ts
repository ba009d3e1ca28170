// safetensors: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {...}}, then the data.
// The header is validated in full before any tensor is read; tensors are read lazily.
import { DTYPE_BYTES, numel, type ByteReader, type DType, type TensorInfo, type TensorSource } from './tensor-source.js';

/** Headers larger than this are refused (the format's own reference reader uses 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

interface Entry extends TensorInfo {
  begin: number; // absolute byte offset in the file
}

export async function openSafetensors(reader: ByteReader): Promise<TensorSource> {
  const label = reader.label;
  if (reader.size < 8) throw new Error(`${label}: not a safetensors file (${reader.size} bytes, shorter than the 8-byte header length)`);
  const lenBytes = await reader.read(0, 8);
  const headerLen = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES) throw new Error(`${label}: header length ${headerLen} exceeds the limit of ${MAX_HEADER_BYTES} bytes (not a safetensors file?)`);
  if (8 + headerLen > reader.size) throw new Error(`${label}: header length ${headerLen} runs past the end of the file (${reader.size} bytes): truncated or not a safetensors file`);
  const headerBytes = await reader.read(8, headerLen);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new Error(`${label}: header is not UTF-8 text (not a safetensors file?)`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new Error(`${label}: header is not valid JSON (${(e as Error).message.replace(/\s+/g, ' ')})`);
  }
  const entries = parseEntries(header, label, 8 + headerLen, reader.size);
  return new SafetensorsSource(reader, entries);
}

function parseEntries(header: unknown, label: string, dataStart: number, fileSize: number): Map<string, Entry> {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error(`${label}: header is not a JSON object`);
  const entries = new Map<string, Entry>();
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const where = `${label}: tensor '${name}'`;
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) throw new Error(`${where}: header entry is not an object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES)) {
      throw new Error(`${where}: unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    const dtype = e.dtype as DType;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${where}: bad shape ${JSON.stringify(e.shape)}`);
    const shape = e.shape as number[];
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[1] < offs[0]) {
      throw new Error(`${where}: bad data_offsets ${JSON.stringify(offs)}`);
    }
    const byteLength = numel(shape) * DTYPE_BYTES[dtype];
    if (offs[1] - offs[0] !== byteLength) {
      throw new Error(`${where}: data_offsets span ${offs[1] - offs[0]} bytes but ${dtype} x [${shape}] needs ${byteLength}`);
    }
    if (dataStart + offs[1] > fileSize) {
      throw new Error(`${where}: data ends at byte ${dataStart + offs[1]} but the file has ${fileSize} bytes (truncated file)`);
    }
    entries.set(name, { name, dtype, shape, byteLength, begin: dataStart + offs[0] });
  }
  checkNoOverlap([...entries.values()], label);
  return entries;
}

function checkNoOverlap(entries: Entry[], label: string): void {
  const sorted = entries.filter((e) => e.byteLength > 0).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].begin < prev.begin + prev.byteLength) {
      throw new Error(`${label}: tensors '${prev.name}' and '${sorted[i].name}' overlap in the data section`);
    }
  }
}

class SafetensorsSource implements TensorSource {
  constructor(
    private readonly reader: ByteReader,
    private readonly entries: Map<string, Entry>,
  ) {}
  get label(): string {
    return this.reader.label;
  }
  names(): string[] {
    return [...this.entries.keys()];
  }
  info(name: string): TensorInfo | undefined {
    const e = this.entries.get(name);
    return e && { name: e.name, dtype: e.dtype, shape: e.shape, byteLength: e.byteLength };
  }
  async read(name: string): Promise<Uint8Array> {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.label}: missing tensor '${name}'`);
    return this.reader.read(e.begin, e.byteLength);
  }
  async readRange(name: string, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.label}: missing tensor '${name}'`);
    if (!(Number.isSafeInteger(byteOffset) && Number.isSafeInteger(byteLength) && byteOffset >= 0 && byteLength >= 0 && byteOffset + byteLength <= e.byteLength)) {
      throw new Error(`${this.label}: tensor '${name}': bytes ${byteOffset}..${byteOffset + byteLength} are outside its ${e.byteLength} bytes`);
    }
    return this.reader.read(e.begin + byteOffset, byteLength);
  }
  async close(): Promise<void> {
    await this.reader.close?.();
  }
}

export interface TensorToWrite {
  dtype: DType;
  shape: number[];
  data: Uint8Array | Float32Array | Int32Array | Uint16Array;
}

/** Serialises tensors to one safetensors file in memory (names sorted, 8-byte aligned header). */
export function encodeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const byteLength = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== byteLength) throw new Error(`tensor '${name}': ${t.data.byteLength} bytes of data for ${t.dtype} x [${t.shape}] (${byteLength} expected)`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const headerBytes = new Uint8Array(padded).fill(0x20);
  headerBytes.set(json);
  json = headerBytes;
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}
