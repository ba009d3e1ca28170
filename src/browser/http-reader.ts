// A ByteReader over HTTP: random access to a remote file with Range requests, so a model is read
// tensor by tensor (the safetensors header first, then each needed tensor's byte range) and the
// whole file is never held in JS memory; tensors nobody asks for (the text tower) are never
// downloaded. When the caller announces the ranges it will read (plan()), neighbouring ones are
// fetched together in spans of up to 8 MiB: one round trip per span instead of per tensor.
//
// Caching (Cache API): every range that was downloaded is stored as its own entry, keyed by the
// file's URL, its version (size + ETag, else Last-Modified) and the byte range; a later load of
// the same model asks for the same ranges and finds them there without downloading again.
// Per-range entries (rather than the whole file once streamed) keep the cache as small as what is
// used and work on the first load already. Each open() sends one 8-byte Range request to learn
// the size and version (so a replaced file is never mixed with stale ranges: entries of an older
// version are deleted); if that request fails (offline) and the cache knows the file, the cached
// version is used. Range requests bypass the browser's HTTP cache (`cache: 'no-store'`), so bytes
// are stored once. The Cache API exists only in secure contexts (https, http://127.0.0.1,
// http://localhost); elsewhere the reader works without it.
//
// A server that ignores Range (answers 200 with the whole file, e.g. `python -m http.server`) is
// handled by reading the whole body into memory once (`rangeSupported === false`); nothing is
// cached by the reader then.
//
// The requests themselves: http-fetch.ts; the cache entries' keys and reads: range-cache.ts.
import type { ByteReader } from '../core/tensor-source.js';
import { fetchBytes, httpError, resolveUrl, totalSize } from './http-fetch.js';
import { HEAD_BYTES, cachedRange, deleteEntries, metaKey, rangeKey, readMeta, type Meta } from './range-cache.js';

export const DEFAULT_CACHE_NAME = 'dualtoken-weights-v1';

/** Ranges longer than this are fetched (and cached) in pieces of this size. */
const CHUNK_BYTES = 64 * 1024 * 1024;
const RETRIES = 2;
/** plan(): planned ranges closer than this are fetched together (the gap is downloaded too). */
const SPAN_GAP = 64 * 1024;
/** plan(): a span (one request, one cache entry) grows up to this size. */
const SPAN_BYTES = 8 * 1024 * 1024;

interface Span {
  start: number;
  end: number; // exclusive
  /** Fetched once already (its bytes are in the cache, unless caching is off). */
  fetched?: boolean;
}

export interface HttpReaderOptions {
  /** Cache API cache name, or false for no caching. Default DEFAULT_CACHE_NAME. */
  cache?: string | false;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

export interface HttpReaderStats {
  /** HTTP requests sent (the size probe included). */
  requests: number;
  /** Body bytes received from the network. */
  networkBytes: number;
  /** Ranges and bytes served from the Cache API. */
  cacheHits: number;
  cacheBytes: number;
  /** Why caching was turned off, if it was (no Cache API, quota exceeded, ...). */
  cacheDisabled?: string;
}

export class HttpReader implements ByteReader {
  readonly stats: HttpReaderStats = { requests: 0, networkBytes: 0, cacheHits: 0, cacheBytes: 0 };
  /** Cache puts still running, by key. */
  private readonly pending = new Map<string, Promise<void>>();
  /** Planned ranges (by offset) -> the span fetched for them; the last span fetched is kept in `spanBytes`. */
  private spans = new Map<number, Span>();
  private spanBytes?: { span: Span; bytes: Uint8Array };
  /** The last read, kept for an immediate repeat (the safetensors header is read twice: plan, then parse). */
  private last?: { offset: number; bytes: Uint8Array };

  private constructor(
    readonly label: string,
    readonly size: number,
    /** size + validator: part of every cache key. */
    readonly version: string,
    /** False when the server ignored Range and the whole file is in `whole`. */
    readonly rangeSupported: boolean,
    private readonly head: Uint8Array,
    private readonly whole: Uint8Array | undefined,
    private cache: Cache | undefined,
    private readonly opts: HttpReaderOptions,
  ) {}

  /** Learns the file's size and version with one 8-byte Range request (see the file comment). */
  static async open(url: string, opts: HttpReaderOptions = {}): Promise<HttpReader> {
    const href = resolveUrl(url);
    const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    let cache: Cache | undefined;
    let cacheDisabled: string | undefined;
    if (opts.cache === false) cacheDisabled = 'disabled by the caller';
    else if (typeof caches === 'undefined') cacheDisabled = 'no Cache API here (not a secure context?)';
    else {
      try {
        cache = await caches.open(opts.cache ?? DEFAULT_CACHE_NAME);
      } catch (e) {
        cacheDisabled = `caches.open failed: ${(e as Error).message}`;
      }
    }
    const cachedMeta = cache ? await readMeta(cache, href) : undefined;

    let res: Response;
    try {
      res = await doFetch(href, { headers: { ...opts.headers, Range: `bytes=0-${HEAD_BYTES - 1}` }, cache: 'no-store', signal: opts.signal });
    } catch (e) {
      if (cache && cachedMeta && !opts.signal?.aborted) {
        // Offline: use the cached version (its ranges are keyed by it).
        const r = new HttpReader(href, cachedMeta.size, cachedMeta.version, true, Uint8Array.from(cachedMeta.head), undefined, cache, opts);
        r.stats.cacheHits++;
        r.stats.cacheBytes += cachedMeta.head.length;
        return r;
      }
      throw new Error(`${href}: cannot fetch (${(e as Error).message})`);
    }
    if (res.status === 200) {
      // The server ignores Range: read the whole body once.
      const body = new Uint8Array(await res.arrayBuffer());
      const r = new HttpReader(href, body.length, '', false, body.subarray(0, HEAD_BYTES), body, undefined, opts);
      r.stats.requests = 1;
      r.stats.networkBytes = body.length;
      r.stats.cacheDisabled = 'the server does not support Range requests (whole file read into memory)';
      return r;
    }
    if (res.status === 416) {
      // Shorter than 8 bytes (or empty): report it as a tiny file; the format reader names the problem.
      const total = /\/(\d+)$/.exec(res.headers.get('Content-Range') ?? '');
      const size = total ? Number(total[1]) : 0;
      await res.body?.cancel();
      const body = size > 0 ? await fetchBytes(doFetch, href, opts, 0, size) : new Uint8Array(0);
      return new HttpReader(href, size, `${size}`, true, body, undefined, undefined, opts);
    }
    if (res.status !== 206) throw await httpError(href, res, 'cannot read');
    const head = new Uint8Array(await res.arrayBuffer());
    const size = await totalSize(doFetch, href, opts, res);
    if (head.length !== Math.min(HEAD_BYTES, size)) throw new Error(`${href}: asked for bytes 0-${HEAD_BYTES - 1}, got ${head.length} bytes`);
    const validator = res.headers.get('ETag') ?? res.headers.get('Last-Modified') ?? '';
    const version = `${size}:${validator}`;
    const reader = new HttpReader(href, size, version, true, head, undefined, cache, opts);
    reader.stats.requests = 1;
    reader.stats.networkBytes = head.length;
    if (cacheDisabled) reader.stats.cacheDisabled = cacheDisabled;
    if (cache) {
      try {
        if (cachedMeta && cachedMeta.version !== version) await deleteEntries(cache, href);
        if (!cachedMeta || cachedMeta.version !== version) {
          await cache.put(metaKey(href), new Response(JSON.stringify({ size, version, head: [...head] } satisfies Meta), { headers: { 'Content-Type': 'application/json' } }));
        }
      } catch (e) {
        reader.disableCache(e);
      }
    }
    return reader;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new Error(`${this.label}: read of ${length} bytes at ${offset} is past the end of the file (${this.size} bytes)`);
    }
    if (this.whole) return this.whole.subarray(offset, offset + length);
    if (offset + length <= this.head.length) return this.head.subarray(offset, offset + length);
    if (this.last && this.last.offset === offset && this.last.bytes.length === length) return this.last.bytes;
    const span = this.spanOf(offset, length);
    let out: Uint8Array;
    if (span && this.spanBytes?.span === span) out = this.spanBytes.bytes.subarray(offset - span.start, offset - span.start + length);
    else if (span && span.fetched) out = (await this.sliceOfCachedSpan(span, offset, length)) ?? (await this.readRange(offset, length));
    else if (span) {
      this.spanBytes = { span, bytes: await this.readRange(span.start, span.end - span.start) };
      span.fetched = true;
      out = this.spanBytes.bytes.subarray(offset - span.start, offset - span.start + length);
    } else if (length <= CHUNK_BYTES) out = await this.readRange(offset, length);
    else {
      out = new Uint8Array(length);
      for (let at = 0; at < length; at += CHUNK_BYTES) out.set(await this.readRange(offset + at, Math.min(CHUNK_BYTES, length - at)), at);
    }
    if (length <= SPAN_BYTES) this.last = { offset, bytes: out };
    return out;
  }

  /**
   * Announces the byte ranges that will be read, IN THE ORDER they will be read (the tensors a
   * model uses). Ranges that follow each other both in that order and in the file (gaps under
   * 64 KiB) are then fetched and cached together, as spans of up to 8 MiB, instead of one request
   * per tensor: far fewer round trips, and nothing far from a planned range (an unused text tower)
   * is downloaded. Because a span is consumed by consecutive reads, only the current span is
   * held in memory. Reads outside the plan work as before. The plan must be the same on every
   * load for the cache to be hit (it is: the same model reads the same tensors in the same order).
   */
  plan(ranges: { offset: number; length: number }[]): void {
    this.spans = new Map();
    this.spanBytes = undefined;
    let cur: Span | undefined;
    for (const r of ranges) {
      if (!(r.length > 0 && r.length <= SPAN_BYTES && r.offset >= 0 && r.offset + r.length <= this.size) || this.spans.has(r.offset)) continue;
      const end = r.offset + r.length;
      if (cur && r.offset >= cur.end && r.offset - cur.end <= SPAN_GAP && end - cur.start <= SPAN_BYTES) cur.end = end;
      else cur = { start: r.offset, end };
      this.spans.set(r.offset, cur);
    }
  }

  /**
   * A planned range read again after its span was let go (a model re-reading one tensor): streamed
   * out of the span's cache entry, holding only the range. undefined when the entry is not there.
   */
  private async sliceOfCachedSpan(span: Span, offset: number, length: number): Promise<Uint8Array | undefined> {
    if (!this.cache) return undefined;
    const key = rangeKey(this.label, this.version, span.start, span.end - span.start);
    try {
      await this.pending.get(key);
      const res = await this.cache.match(key);
      if (!res?.body) return undefined;
      const out = new Uint8Array(length);
      const reader = res.body.getReader();
      let pos = span.start; // file offset of the next chunk's first byte
      let got = 0;
      while (got < length) {
        const { done, value } = await reader.read();
        if (done) break;
        const from = Math.max(offset, pos);
        const to = Math.min(offset + length, pos + value.length);
        if (to > from) {
          out.set(value.subarray(from - pos, to - pos), from - offset);
          got += to - from;
        }
        pos += value.length;
      }
      await reader.cancel();
      if (got !== length) return undefined;
      this.stats.cacheHits++;
      this.stats.cacheBytes += length;
      return out;
    } catch {
      return undefined;
    }
  }

  private spanOf(offset: number, length: number): Span | undefined {
    const s = this.spans.get(offset);
    return s && offset + length <= s.end ? s : undefined;
  }

  /** Removes this file's entries from the cache. */
  async evict(): Promise<void> {
    if (this.cache) await deleteEntries(this.cache, this.label);
  }

  private async readRange(offset: number, length: number): Promise<Uint8Array> {
    if (this.cache) {
      try {
        // A range read again while its own put is still running (a span re-read for one tensor) waits for it.
        await this.pending.get(rangeKey(this.label, this.version, offset, length));
        const hit = await cachedRange(this.cache, this.label, this.version, offset, length);
        if (hit) {
          this.stats.cacheHits++;
          this.stats.cacheBytes += length;
          return hit;
        }
      } catch (e) {
        this.disableCache(e);
      }
    }
    const doFetch = this.opts.fetch ?? globalThis.fetch.bind(globalThis);
    let bytes: Uint8Array | undefined;
    for (let attempt = 0; ; attempt++) {
      this.stats.requests++;
      try {
        bytes = await fetchBytes(doFetch, this.label, this.opts, offset, length);
        break;
      } catch (e) {
        if (attempt >= RETRIES || this.opts.signal?.aborted || (e as { permanent?: boolean }).permanent) throw e;
      }
    }
    this.stats.networkBytes += bytes.length;
    if (this.cache) {
      // Stored in the background (a put is a disk write); close() waits for all of them.
      const key = rangeKey(this.label, this.version, offset, length);
      const put = this.cache
        .put(key, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(length) } }))
        .catch((e: unknown) => this.disableCache(e))
        .finally(() => this.pending.delete(key));
      this.pending.set(key, put);
    }
    return bytes;
  }

  /** Waits until every downloaded range is in the cache. */
  async close(): Promise<void> {
    this.spanBytes = undefined;
    this.last = undefined;
    while (this.pending.size) await Promise.all([...this.pending.values()]);
  }

  private disableCache(e: unknown): void {
    this.cache = undefined;
    this.stats.cacheDisabled = `Cache API error: ${(e as Error).message ?? e}`;
  }
}
