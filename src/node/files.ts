// Opening weight files from disk.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { openPyTorchCheckpoint } from '../core/pytorch.js';
import { openSafetensors } from '../core/safetensors.js';
import { MergedSource } from '../core/sharded.js';
import type { TensorSource } from '../core/tensor-source.js';
import { FileReader } from './file.js';

export async function openSafetensorsFile(path: string): Promise<TensorSource> {
  const reader = await FileReader.open(path);
  try {
    return await openSafetensors(reader);
  } catch (e) {
    await reader.close();
    throw e;
  }
}

/** The shard files a `*.index.json` names (none when it cannot be read: opening it reports that). */
export function shardFiles(indexPath: string): string[] {
  try {
    const map = (JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map?: Record<string, unknown> }).weight_map ?? {};
    return [...new Set(Object.values(map).filter((s): s is string => typeof s === 'string'))].map((s) => join(dirname(indexPath), s));
  } catch {
    return [];
  }
}

/** Opens a .safetensors file, a sharded `*.index.json` set (every listed tensor must be in its shard) or a .pt checkpoint. */
export async function openWeightsFile(path: string): Promise<TensorSource> {
  if (path.endsWith('.index.json')) {
    let index: { weight_map?: unknown };
    try {
      index = JSON.parse(await readFile(path, 'utf8')) as { weight_map?: unknown };
    } catch (e) {
      throw new Error(`${path}: cannot read the shard index (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const map = index.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new Error(`${path}: no 'weight_map' object`);
    const entries = Object.entries(map as Record<string, unknown>);
    for (const [name, shard] of entries) {
      if (typeof shard !== 'string' || basename(shard) !== shard) throw new Error(`${path}: tensor '${name}' maps to ${JSON.stringify(shard)}, not a file name beside the index`);
    }
    const parts: TensorSource[] = [];
    try {
      for (const shard of new Set(entries.map(([, s]) => s as string))) parts.push(await openSafetensorsFile(join(dirname(path), shard)));
      const merged = new MergedSource(path, parts);
      for (const [name, shard] of entries) {
        if (!merged.info(name)) throw new Error(`${path}: tensor '${name}' is listed in ${shard as string} but not found there`);
      }
      return merged;
    } catch (e) {
      await Promise.all(parts.map((part) => part.close?.()));
      throw e;
    }
  }
  if (path.endsWith('.safetensors')) return openSafetensorsFile(path);
  const reader = await FileReader.open(path);
  try {
    return await openPyTorchCheckpoint(reader);
  } catch (e) {
    await reader.close();
    throw e;
  }
}
