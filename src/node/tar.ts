// A streaming reader of tar archives (POSIX ustar, GNU long names, pax `path` records), and the
// WebDataset view of a tar shard: members grouped by key, one image per sample. Only headers are
// read while walking; a member's data is read when asked for (one member at a time), so memory
// stays bounded by the largest image, whatever the size of the shard. No dependency.
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

const BLOCK = 512;
/** A member larger than this is refused when read (images, not whole datasets, live in a shard). */
export const MAX_MEMBER_BYTES = 1 << 30;

export interface TarMember {
  /** The path inside the archive (ustar prefix, GNU long name or pax path applied). */
  name: string;
  /** '0' regular file, '5' folder, ... (ustar typeflag; '\0' is reported as '0'). */
  type: string;
  size: number;
  /** Reads the member's data (only while the walk is at this member). */
  read(): Promise<Uint8Array>;
}

function text(block: Uint8Array, start: number, length: number): string {
  let end = start;
  while (end < start + length && block[end] !== 0) end++;
  return Buffer.from(block.buffer, block.byteOffset + start, end - start).toString('utf8');
}

/** A numeric header field: octal text, or GNU base-256 (high bit of the first byte set). */
function number(block: Uint8Array, start: number, length: number, what: string): number {
  if (block[start] & 0x80) {
    let v = block[start] & 0x7f;
    for (let i = start + 1; i < start + length; i++) v = v * 256 + block[i];
    if (!Number.isSafeInteger(v)) throw new Error(`${what} is too large`);
    return v;
  }
  const s = text(block, start, length).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error(`${what} '${s}' is not an octal number`);
  return parseInt(s, 8);
}

function checksumOk(block: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  const s = text(block, 148, 8).trim();
  return /^[0-7]+$/.test(s) && parseInt(s, 8) === sum;
}

/** pax extended header records: "LEN key=value\n" ... */
function paxRecords(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const s = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  let at = 0;
  while (at < s.length) {
    const space = s.indexOf(' ', at);
    if (space < 0) break;
    const len = Number(s.slice(at, space));
    if (!Number.isInteger(len) || len <= 0) break;
    const record = s.slice(space + 1, at + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += len;
  }
  return out;
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/**
 * The members of a tar file, in order. Errors name the file and the byte offset: a header whose
 * checksum is wrong (not a tar file, or corrupt), or a member running past the end (truncated).
 */
export async function* tarMembers(path: string): AsyncGenerator<TarMember> {
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${path}: cannot read (${e.code ?? e.message})`);
  });
  try {
    const size = (await fh.stat()).size;
    let at = 0;
    let longName: string | undefined;
    let pax: Map<string, string> | undefined;
    while (at + BLOCK <= size) {
      const header = await readAt(fh, at, BLOCK);
      if (header.every((b) => b === 0)) return; // end of archive (one zero block is enough)
      if (!checksumOk(header)) throw new Error(`${path}: not a tar file, or corrupt (bad header checksum at byte ${at})`);
      const where = `${path}: member at byte ${at}`;
      const memberSize = number(header, 124, 12, `${where}: size`);
      const dataAt = at + BLOCK;
      if (dataAt + memberSize > size) throw new Error(`${path}: truncated (member at byte ${at} needs ${memberSize} bytes, the file ends ${size - dataAt} bytes after its header)`);
      at = dataAt + Math.ceil(memberSize / BLOCK) * BLOCK;
      const type = String.fromCharCode(header[156] || 0x30);
      const readData = async () => {
        if (memberSize > MAX_MEMBER_BYTES) throw new Error(`${where}: ${memberSize} bytes, over the limit of ${MAX_MEMBER_BYTES}`);
        return readAt(fh, dataAt, memberSize);
      };
      if (type === 'L') {
        longName = text(await readData(), 0, memberSize);
        continue;
      }
      if (type === 'x') {
        pax = paxRecords(await readData());
        continue;
      }
      if (type === 'g') continue; // global pax header: nothing here needs it
      const ustar = text(header, 257, 5) === 'ustar';
      const prefix = ustar ? text(header, 345, 155) : '';
      const plain = text(header, 0, 100);
      const name = pax?.get('path') ?? longName ?? (prefix ? `${prefix}/${plain}` : plain);
      longName = undefined;
      pax = undefined;
      let current = true;
      yield {
        name,
        type: type === '7' ? '0' : type,
        size: memberSize,
        read: () => {
          if (!current) throw new Error(`${where}: read after the walk moved on`);
          return readData();
        },
      };
      current = false;
    }
    if (at < size && at + BLOCK > size) throw new Error(`${path}: truncated (a partial header at byte ${at})`);
  } finally {
    await fh.close();
  }
}

/** Image extensions taken from a WebDataset sample (the member name after the key's dot, lower case). */
export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png'];

/** WebDataset's split of a member name: key = folder + basename up to its first dot, extension = the rest. */
export function webdatasetKey(name: string): { key: string; ext: string } {
  const base = basename(name);
  const dot = base.indexOf('.');
  const dir = dirname(name);
  const stem = dot < 0 ? base : base.slice(0, dot);
  return { key: dir === '.' ? stem : `${dir}/${stem}`, ext: dot < 0 ? '' : base.slice(dot + 1).toLowerCase() };
}

export interface TarSample {
  key: string;
  /** The image member's name inside the shard. */
  member: string;
  read(): Promise<Uint8Array>;
}

/**
 * The images of a WebDataset shard, one per sample: members are grouped by key as WebDataset
 * does (consecutive members sharing a key), the sample's first `KEY.jpg|jpeg|png` member is its
 * image; samples without one, and other members (captions, JSON), are skipped.
 */
export async function* webdatasetImages(path: string): AsyncGenerator<TarSample> {
  let lastKey: string | undefined;
  for await (const m of tarMembers(path)) {
    if (m.type !== '0') continue;
    const { key, ext } = webdatasetKey(m.name);
    if (!IMAGE_EXTENSIONS.includes(ext)) continue;
    if (key === lastKey) continue; // a second image of the same sample
    lastKey = key;
    yield { key, member: m.name, read: m.read };
  }
}

/** Writes a ustar archive in memory (tests, small shards): regular files only. */
export function writeTar(files: { name: string; data: Uint8Array }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of files) {
    const header = new Uint8Array(BLOCK);
    const name = Buffer.from(f.name, 'utf8');
    if (name.length > 100) throw new Error(`${f.name}: names over 100 bytes are not written by writeTar`);
    header.set(name, 0);
    const field = (start: number, length: number, value: number) => header.set(Buffer.from(value.toString(8).padStart(length - 1, '0') + '\0', 'ascii'), start);
    field(100, 8, 0o644);
    field(108, 8, 0);
    field(116, 8, 0);
    field(124, 12, f.data.byteLength);
    field(136, 12, 0);
    header[156] = 0x30;
    header.set(Buffer.from('ustar\x0000', 'ascii'), 257);
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of header) sum += b;
    header.set(Buffer.from(sum.toString(8).padStart(6, '0') + '\0 ', 'ascii'), 148);
    parts.push(header, f.data, new Uint8Array((BLOCK - (f.data.byteLength % BLOCK)) % BLOCK));
  }
  parts.push(new Uint8Array(2 * BLOCK));
  return Buffer.concat(parts);
}
