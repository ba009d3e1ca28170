// Where `tokenize` finds images. A SOURCE is one of:
// - a folder: every .jpg / .jpeg / .png under it (recursive), in a stable order (relative paths,
//   '/'-separated, compared by code unit); key = the relative path;
// - a WebDataset tar shard (.tar): one image per sample, key = the sample's key (src/node/tar.ts);
// - any other file: a text list of image paths, one a line (blank lines and lines starting with
//   '#' skipped; relative paths are relative to the list's folder); key = the line as written.
// Each source becomes one token shard named after it (`<name>.tokens.safetensors`).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, extname, isAbsolute, join, resolve } from 'node:path';
import { errorCode } from './messages.js';
import { IMAGE_EXTENSIONS, webdatasetImages } from './tar.js';

export interface SourceItem {
  key: string;
  read(): Promise<Uint8Array>;
}

export interface Source {
  /** As given. */
  path: string;
  kind: 'folder' | 'list' | 'tar';
  /** The shard's name: the folder's name, or the file's without its extension. */
  name: string;
  /** The number of images (a walk over names or tar headers; nothing decoded). */
  count(): Promise<number>;
  items(): AsyncIterable<SourceItem>;
}

const isImageName = (name: string) => IMAGE_EXTENSIONS.includes(extname(name).slice(1).toLowerCase());

/** Image files under `dir`, relative, '/'-separated, sorted; links to folders are not followed (no cycles). */
export function listFolder(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    let entries;
    try {
      entries = readdirSync(rel ? join(dir, rel) : dir, { withFileTypes: true });
    } catch (e) {
      throw new Error(`${rel ? join(dir, rel) : dir}: cannot read the folder (${errorCode(e)})`);
    }
    for (const e of entries) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path);
      else if (isImageName(e.name) && (e.isFile() || (e.isSymbolicLink() && statSync(join(dir, path), { throwIfNoEntry: false })?.isFile()))) out.push(path);
    }
  };
  walk('');
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The image paths of a list file (as written, and resolved against the list's folder). */
export function readList(path: string): { key: string; file: string }[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read (${errorCode(e)})`);
  }
  const dir = resolve(path, '..');
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((key) => ({ key, file: isAbsolute(key) ? key : join(dir, key) }));
}

async function readImageFile(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new Error(`cannot read (${errorCode(e)})`);
  }
}

/** Opens a SOURCE (see the file comment); refuses one that does not exist. */
export function openSource(path: string): Source {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) throw new Error(`${path}: no such file or folder`);
  if (st.isDirectory()) {
    let files: string[] | undefined;
    const list = () => (files ??= listFolder(path));
    return {
      path,
      kind: 'folder',
      name: basename(resolve(path)),
      count: async () => list().length,
      items: async function* () {
        for (const key of list()) yield { key, read: () => readImageFile(join(path, key)) };
      },
    };
  }
  if (path.toLowerCase().endsWith('.tar')) {
    return {
      path,
      kind: 'tar',
      name: basename(path).slice(0, -4),
      count: async () => {
        let n = 0;
        for await (const _ of webdatasetImages(path)) n++;
        return n;
      },
      items: async function* () {
        for await (const s of webdatasetImages(path)) yield { key: s.key, read: s.read };
      },
    };
  }
  let entries: { key: string; file: string }[] | undefined;
  const list = () => (entries ??= readList(path));
  return {
    path,
    kind: 'list',
    name: basename(path, extname(path)),
    count: async () => list().length,
    items: async function* () {
      for (const e of list()) yield { key: e.key, read: () => readImageFile(e.file) };
    },
  };
}

/** Opens every SOURCE; two sources whose shards would have the same name are refused. */
export function openSources(paths: string[]): Source[] {
  const sources = paths.map(openSource);
  const byName = new Map<string, string>();
  for (const s of sources) {
    const other = byName.get(s.name);
    if (other !== undefined) throw new Error(`${s.path}: its shard name '${s.name}' is the same as that of ${other}; rename one`);
    byName.set(s.name, s.path);
  }
  return sources;
}
