// Small image datasets for the tokenize / queue tests: deterministic PNG and JPEG images of a few
// sizes around 64 px, as a folder, a list file and WebDataset tar shards; and token shards read back.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import jpeg from 'jpeg-js';
import { MemoryReader } from '../../src/core/bytes.js';
import { toFloat32, toInt32 } from '../../src/core/dtype.js';
import { openSafetensors } from '../../src/core/safetensors.js';
import { encodePng } from '../../src/node/decode.js';
import { writeTar } from '../../src/node/tar.js';

/** Image `seed`: RGB pixels of a size that varies with the seed (40..76 px a side). */
export function pixels(seed: number): { width: number; height: number; data: Uint8Array } {
  const width = 48 + (seed % 5) * 7;
  const height = 40 + (seed % 3) * 12;
  const data = new Uint8Array(width * height * 3);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = ((i % 89) * 3 + (s >>> 27) * 5 + seed * 17) & 255;
  }
  return { width, height, data };
}

export function pngBytes(seed: number): Uint8Array {
  return encodePng(pixels(seed));
}

export function jpegBytes(seed: number): Uint8Array {
  const p = pixels(seed);
  const rgba = new Uint8Array(p.width * p.height * 4);
  for (let i = 0; i < p.width * p.height; i++) rgba.set([p.data[3 * i], p.data[3 * i + 1], p.data[3 * i + 2], 255], 4 * i);
  return new Uint8Array(jpeg.encode({ width: p.width, height: p.height, data: rgba }, 85).data);
}

export function write(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

/** A WebDataset shard of images seed0 .. seed0 + n - 1 (PNG, every third a JPEG), each with a caption member. */
export function writeShard(path: string, seed0: number, n: number): string[] {
  const files: { name: string; data: Uint8Array }[] = [];
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = `sample${String(seed0 + i).padStart(6, '0')}`;
    const jpg = (seed0 + i) % 3 === 0;
    files.push({ name: `${key}.txt`, data: Buffer.from(`caption ${i}`) });
    files.push({ name: `${key}.${jpg ? 'jpg' : 'png'}`, data: jpg ? jpegBytes(seed0 + i) : pngBytes(seed0 + i) });
    keys.push(key);
  }
  write(path, writeTar(files));
  return keys;
}

export interface Shard {
  meta: Record<string, string>;
  keys: string[];
  failed: { key: string; reason: string }[];
  tensors: Record<string, { shape: number[]; dtype: string; data: Int32Array | Float32Array }>;
}

/** A token shard read back whole. */
export async function readShard(path: string): Promise<Shard> {
  const bytes = readFileSync(path);
  const st = await openSafetensors(new MemoryReader(bytes, path));
  const n = Number(bytes.readBigUInt64LE(0));
  const meta = (JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as { __metadata__: Record<string, string> }).__metadata__;
  const tensors: Shard['tensors'] = {};
  for (const name of st.names()) {
    const info = st.info(name)!;
    const raw = await st.read(name);
    tensors[name] = { shape: info.shape, dtype: info.dtype, data: info.dtype === 'I32' ? toInt32(raw, 'I32', name) : toFloat32(raw, info.dtype, name) };
  }
  return { meta, keys: JSON.parse(meta.keys) as string[], failed: JSON.parse(meta.failed) as Shard['failed'], tensors };
}

export const shardFile = (dir: string, name: string) => join(dir, `${name}.tokens.safetensors`);
