// Token shards on disk: their names, the header metadata that says a shard is complete for a
// config, the manifest of an output folder, and the temporary files a killed writer leaves.
// Written by tokenize.ts (one shard per source); the format is described there.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DualTokenConfig } from '../core/config.js';
import { writeFile } from './output.js';

export const SHARD_SUFFIX = '.tokens.safetensors';
export const MANIFEST = 'manifest.json';
/** The `format` of a token shard's metadata. */
export const SHARD_FORMAT = 'dualtoken-tokens/1';

/** Extra outputs a shard may hold besides the codes. */
export type KeepOutput = 'pooler';
export const KEEP_OUTPUTS: KeepOutput[] = ['pooler'];

export interface ShardFailure {
  key: string;
  reason: string;
}

/** sha256 of the model's config as JSON (the parsed config: the DualToken config and its backbone's). */
export function configHash(config: DualTokenConfig): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex');
}

export const shardPath = (outDir: string, name: string) => join(outDir, `${name}${SHARD_SUFFIX}`);
export const keepText = (keep: KeepOutput[]) => [...new Set(keep)].sort().join(',');

/** A token shard's `__metadata__`, read from its header only; undefined when there is no readable shard. */
export function readShardMetadata(path: string): Record<string, string> | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) return undefined;
    const n = Number(len.readBigUInt64LE(0));
    if (n > 1 << 30) return undefined;
    const header = Buffer.alloc(n);
    if (readSync(fd, header, 0, n, 8) !== n) return undefined;
    const meta = (JSON.parse(header.toString('utf8')) as { __metadata__?: Record<string, string> }).__metadata__;
    return meta?.format === SHARD_FORMAT ? meta : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The shard is at its final name (so complete) and was made with this config and these outputs. */
export function shardIsComplete(path: string, hash: string, keep: KeepOutput[]): boolean {
  const meta = readShardMetadata(path);
  return meta !== undefined && meta.config_hash === hash && (meta.keep ?? '') === keepText(keep);
}

export interface ManifestEntry {
  source: string;
  shard: string;
  images: number;
  failures: ShardFailure[];
  config_hash: string;
}

/** How old a temporary shard or manifest file must be to count as left by a killed run (writing one takes seconds). */
export const STALE_TEMP_MS = 10 * 60_000;

/** Removes the temporary files (`.NAME.tmp-PID-RANDOM`) of `files` in `outDir` older than STALE_TEMP_MS: a killed writer's. */
export function removeStaleTemps(outDir: string, files: string[], now = Date.now()): string[] {
  let names: string[];
  try {
    names = readdirSync(outDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const f of names) {
    if (!files.some((file) => f.startsWith(`.${file}.tmp-`))) continue;
    const path = join(outDir, f);
    try {
      if (now - statSync(path).mtimeMs < STALE_TEMP_MS) continue;
      rmSync(path, { force: true });
      removed.push(f);
    } catch {
      // gone already (another worker cleaned it)
    }
  }
  return removed;
}

/** OUTDIR/manifest.json from the headers of the complete shards in OUTDIR (sorted by shard name), written atomically. */
export function writeManifest(outDir: string): ManifestEntry[] {
  const shards = readdirSync(outDir)
    .filter((f) => f.endsWith(SHARD_SUFFIX) && !f.startsWith('.'))
    .sort();
  const entries: ManifestEntry[] = [];
  for (const shard of shards) {
    const meta = readShardMetadata(join(outDir, shard));
    if (!meta) continue;
    entries.push({
      source: meta.source,
      shard,
      images: (JSON.parse(meta.keys) as string[]).length,
      failures: JSON.parse(meta.failed) as ShardFailure[],
      config_hash: meta.config_hash,
    });
  }
  writeFile(join(outDir, MANIFEST), `${JSON.stringify({ format: 'dualtoken-manifest/1', shards: entries }, null, 1)}\n`);
  return entries;
}

