// dualtoken search --model DIR --images FOLDER --query "..." [--top K] [--cache FILE] [--batch-size N] [--tokenizer F]
// Ranks the images of a folder (.jpg .jpeg .png, subfolders included, dot-names skipped) by one
// text query: classify's logits of each image against the query (sigmoid per pair), highest first.
// The image embeddings (DualToken's MAP-head output of the quantized semantic path, before
// normalisation: what classify computes) are computed once and cached in
// FOLDER/.dualtoken-embeds.safetensors (or --cache FILE): f32 `image_embeds` [N, C], and in the
// header's __metadata__ the model key (sha256 of the parsed config and the weights files' names,
// sizes and mtimes) and each row's file (path relative to FOLDER, size, mtime). A later run reuses
// every row whose file is unchanged, computes the new or changed ones, drops the removed ones, and
// rewrites the cache only when something changed; another model key discards the whole cache.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { MemoryReader } from '../core/bytes.js';
import type { DualTokenConfig } from '../core/config.js';
import { toFloat32 } from '../core/dtype.js';
import { encodeSafetensors, openSafetensors } from '../core/safetensors.js';
import type { ParsedArgs } from './args.js';
import { locateModel } from './load.js';
import { checkExtension, checkWritableFile, writeOutput } from './output.js';
import { openTextModel, type TextCommandContext } from './text-commands.js';

export const DEFAULT_CACHE_NAME = '.dualtoken-embeds.safetensors';
const IMAGE_EXT = /\.(jpe?g|png)$/i;
const CACHE_FORMAT = 'dualtoken-search-v1';

export interface SearchHit {
  /** Path relative to the folder. */
  path: string;
  logit: number;
  prob: number;
}

export interface SearchResult {
  /** Every image, best first. */
  ranking: SearchHit[];
  /** Rows taken from the cache / computed now. */
  reused: number;
  computed: number;
  cachePath: string;
  /** Whether the cache file was (re)written. */
  wroteCache: boolean;
}

interface FileKey {
  path: string;
  size: number;
  mtimeMs: number;
}

/** The folder's images (relative paths, sorted), subfolders included, dot-names skipped. */
export function listImages(folder: string): FileKey[] {
  const out: FileKey[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && IMAGE_EXT.test(e.name)) {
        const st = statSync(p);
        out.push({ path: relative(folder, p).split('\\').join('/'), size: st.size, mtimeMs: st.mtimeMs });
      }
    }
  };
  walk(folder);
  return out;
}

/** sha256 of the parsed config and the weights files (name, size, mtime): what the cache's rows depend on. */
export function modelKey(config: DualTokenConfig, files: string[]): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(config));
  for (const f of files) {
    const st = statSync(f);
    h.update(`\n${basename(f)}|${st.size}|${st.mtimeMs}`);
  }
  return h.digest('hex');
}

const fileId = (f: FileKey) => `${f.path}|${f.size}|${f.mtimeMs}`;

/** The cache's rows by file id, or an empty map (absent, unreadable, another model or width). */
async function readCache(path: string, key: string, C: number): Promise<Map<string, Float32Array>> {
  const rows = new Map<string, Float32Array>();
  if (!existsSync(path)) return rows;
  try {
    const bytes = readFileSync(path);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    const meta = (JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8')) as { __metadata__?: Record<string, string> }).__metadata__;
    if (!meta || meta.format !== CACHE_FORMAT || meta.model !== key) return rows;
    const files = JSON.parse(meta.files) as FileKey[];
    const st = await openSafetensors(new MemoryReader(bytes, path));
    const info = st.info('image_embeds');
    if (!info || info.shape.length !== 2 || info.shape[0] !== files.length || info.shape[1] !== C) return rows;
    const data = toFloat32(await st.read('image_embeds'), info.dtype, `${path}: image_embeds`);
    files.forEach((f, i) => rows.set(fileId(f), data.slice(i * C, (i + 1) * C)));
  } catch {
    rows.clear(); // a damaged cache is recomputed, not an error
  }
  return rows;
}

/** The search itself (the command prints its result). */
export async function searchImages(args: ParsedArgs, ctx: TextCommandContext): Promise<SearchResult> {
  const model = args.flags.get('model');
  const folder = args.flags.get('images');
  const query = args.flags.get('query');
  if (!model) throw new Error(`'search' needs --model`);
  if (!folder) throw new Error(`'search' needs --images FOLDER`);
  if (query === undefined || query.trim() === '') throw new Error(`'search' needs --query "TEXT"`);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new Error(`${folder}: not a folder`);
  const sizeText = args.flags.get('batch-size') ?? '4';
  const size = Number(sizeText);
  if (!Number.isInteger(size) || size < 1) throw new Error(`--batch-size ${sizeText}: expected a positive integer`);
  const cachePath = args.flags.get('cache') ?? join(folder, DEFAULT_CACHE_NAME);
  checkExtension(cachePath, ['.safetensors'], 'search cache');
  const images = listImages(folder);
  if (images.length === 0) throw new Error(`${folder}: no images (.jpg, .jpeg, .png)`);
  const { config, weightsPath, files } = locateModel(model);
  if (files.some((f) => resolve(f) === resolve(cachePath))) throw new Error(`--cache ${cachePath} is one of the model's files`);
  const C = config.vision.hiddenSize;
  const key = modelKey(config, files);
  const cached = await readCache(cachePath, key, C);
  const all = new Float32Array(images.length * C);
  const todo: number[] = [];
  images.forEach((f, i) => {
    const row = cached.get(fileId(f));
    if (row) all.set(row, i * C);
    else todo.push(i);
  });
  const dt = await openTextModel(args, ctx, weightsPath, config);
  try {
    for (let i = 0; i < todo.length; i += size) {
      const batch = todo.slice(i, i + size);
      const enc = await dt.encodeImages(batch.map((j) => ctx.readImage(join(folder, images[j].path))));
      batch.forEach((j, k) => all.set(enc.embedding.subarray(k * C, (k + 1) * C), j * C));
    }
    const stale = todo.length > 0 || cached.size !== images.length;
    if (stale) {
      checkWritableFile(cachePath);
      await writeOutput(cachePath, encodeSafetensors({ image_embeds: { dtype: 'F32', shape: [images.length, C], data: all } }, { format: CACHE_FORMAT, model: key, files: JSON.stringify(images) }));
    }
    const r = await dt.text().classifyEmbeddings(all, images.length, [query]);
    const ranking = images
      .map((f, i) => ({ path: f.path, logit: r.logitsPerImage[i], prob: r.probs[i] }))
      .sort((a, b) => b.logit - a.logit);
    return { ranking, reused: images.length - todo.length, computed: todo.length, cachePath, wroteCache: stale };
  } finally {
    dt.dispose();
  }
}

export async function searchCommand(args: ParsedArgs, ctx: TextCommandContext): Promise<void> {
  const topText = args.flags.get('top');
  const top = topText === undefined ? 10 : Number(topText);
  if (!Number.isInteger(top) || top < 1) throw new Error(`--top ${topText}: expected a positive integer`);
  const r = await searchImages(args, ctx);
  if (!args.switches.has('quiet')) console.error(`${r.ranking.length} image(s): ${r.reused} embedding(s) from ${r.cachePath}, ${r.computed} computed${r.wroteCache ? ' (cache written)' : ''}`);
  for (const h of r.ranking.slice(0, top)) console.log(`${h.prob.toExponential(4).padStart(11)}  ${h.logit.toFixed(4).padStart(9)}  ${h.path}`);
}
