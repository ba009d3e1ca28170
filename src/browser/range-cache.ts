// The Cache API side of HttpReader (http-reader.ts): every downloaded range is an entry of its
// own, keyed by the file's URL, its version (size + ETag, else Last-Modified) and the byte range;
// a meta entry per file holds its size, version and first bytes, for opening it offline.

/** Bytes at the start of a file kept in its meta entry (the safetensors header length). */
export const HEAD_BYTES = 8;

/** A file's meta entry. */
export interface Meta {
  size: number;
  version: string;
  /** The first 8 bytes (the safetensors header length), for opening the file offline. */
  head: number[];
}

function keyUrl(url: string, what: string): string {
  const u = new URL(url);
  u.hash = '';
  u.searchParams.append('dualtoken-cache', what);
  return u.href;
}

/** The key of the meta entry of `url`. */
export function metaKey(url: string): string {
  return keyUrl(url, 'meta');
}

/** The meta entry of `url`, if the cache holds a valid one. */
export async function readMeta(cache: Cache, url: string): Promise<Meta | undefined> {
  try {
    const res = await cache.match(metaKey(url));
    if (!res) return undefined;
    const m = (await res.json()) as Partial<Meta>;
    const ok = typeof m.size === 'number' && typeof m.version === 'string' && Array.isArray(m.head) && m.head.length === Math.min(HEAD_BYTES, m.size);
    return ok ? { size: m.size!, version: m.version!, head: m.head! } : undefined;
  } catch {
    return undefined;
  }
}

/** The key of the entry of bytes [offset, offset + length) of `url` at `version`. */
export function rangeKey(url: string, version: string, offset: number, length: number): string {
  return keyUrl(url, `${version}:${offset}-${offset + length - 1}`);
}

/** The cached bytes of a range, if its entry is there and whole (a damaged one is deleted). */
export async function cachedRange(cache: Cache, url: string, version: string, offset: number, length: number): Promise<Uint8Array | undefined> {
  const key = rangeKey(url, version, offset, length);
  const res = await cache.match(key);
  if (!res) return undefined;
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length === length) return bytes;
  await cache.delete(key); // a damaged entry: fetch again
  return undefined;
}

/** Deletes every entry of `url` (all versions, the meta entry included). */
export async function deleteEntries(cache: Cache, url: string): Promise<void> {
  const base = new URL(url);
  base.hash = '';
  base.search = base.searchParams.toString(); // serialised the way searchParams.delete() leaves `u`
  for (const req of await cache.keys()) {
    const u = new URL(req.url);
    if (!u.searchParams.has('dualtoken-cache')) continue;
    u.searchParams.delete('dualtoken-cache');
    if (u.href === base.href) await cache.delete(req);
  }
}
