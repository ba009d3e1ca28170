// A model by URL: config.json (+ siglip_config.json when present) and the weights, read lazily
// through HttpReader (Range requests, Cache API). The URL is a model folder (".../tiny/") or a
// weights file with config.json beside it (".../model.safetensors", ".../x.pt").
import { parseConfig, type DualTokenConfig } from '../core/config.js';
import { openPyTorchCheckpoint } from '../core/pytorch.js';
import { openSafetensors } from '../core/safetensors.js';
import { MergedSource } from '../core/sharded.js';
import type { TensorSource } from '../core/tensor-source.js';
import { HttpReader, type HttpReaderOptions, type HttpReaderStats } from './http-reader.js';

export interface ModelUrlOptions extends HttpReaderOptions {
  /** Weights file name inside the folder (default: model.safetensors, else model.safetensors.index.json). */
  weights?: string;
}

export interface UrlModelFiles {
  config: DualTokenConfig;
  source: TensorSource;
  /** The URL of the weights file (or shard index) that was opened. */
  weightsUrl: string;
  /** One reader per weights file (shards): their download / cache counters. */
  readers: HttpReader[];
  /**
   * Announces which tensors will be read, in the order they will be read, so that neighbouring
   * ones are fetched in one request (HttpReader.plan). Safetensors files only; a no-op for
   * PyTorch checkpoints.
   */
  plan(names: Iterable<string>): void;
}

type Layout = Map<string, { offset: number; length: number }>;

/**
 * Absolute byte ranges of a safetensors file's tensors, from its header (read through the
 * reader, which keeps that read for openSafetensors' own parse right after). undefined when the
 * header is not readable: openSafetensors then reports the problem properly.
 */
async function safetensorsLayout(reader: HttpReader): Promise<Layout | undefined> {
  try {
    if (reader.size < 8) return undefined;
    const len = await reader.read(0, 8);
    const n = Number(new DataView(len.buffer, len.byteOffset, 8).getBigUint64(0, true));
    if (n > 100_000_000 || 8 + n > reader.size) return undefined;
    const header = JSON.parse(new TextDecoder().decode(await reader.read(8, n))) as Record<string, { data_offsets?: [number, number] }>;
    const layout: Layout = new Map();
    for (const [name, e] of Object.entries(header)) {
      const o = e?.data_offsets;
      if (name !== '__metadata__' && Array.isArray(o) && o.length === 2) layout.set(name, { offset: 8 + n + o[0], length: o[1] - o[0] });
    }
    return layout;
  } catch {
    return undefined;
  }
}

/** Download counters of all readers added up. */
export function sumStats(readers: HttpReader[]): HttpReaderStats {
  const s: HttpReaderStats = { requests: 0, networkBytes: 0, cacheHits: 0, cacheBytes: 0 };
  for (const r of readers) {
    s.requests += r.stats.requests;
    s.networkBytes += r.stats.networkBytes;
    s.cacheHits += r.stats.cacheHits;
    s.cacheBytes += r.stats.cacheBytes;
    s.cacheDisabled ??= r.stats.cacheDisabled;
  }
  return s;
}

const WEIGHTS_FILE = /\.(safetensors|pt|pth|ckpt|index\.json)$/i;

function folderOf(url: string): { dir: string; file?: string } {
  const base = typeof location !== 'undefined' ? location.href : undefined;
  let u: URL;
  try {
    u = new URL(url, base);
  } catch {
    throw new Error(`${url}: not a valid URL`);
  }
  const last = u.pathname.split('/').pop() ?? '';
  if (WEIGHTS_FILE.test(last)) return { dir: new URL('./', u).href, file: u.href };
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return { dir: u.href };
}

async function fetchJson(url: string, opts: ModelUrlOptions, optional: boolean): Promise<Record<string, unknown> | undefined> {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  let res: Response;
  try {
    res = await doFetch(url, { headers: opts.headers, signal: opts.signal });
  } catch (e) {
    // Offline: the browser's HTTP cache may still hold it (the weights come from the Cache API then).
    const cached = opts.signal?.aborted ? undefined : await doFetch(url, { headers: opts.headers, cache: 'force-cache' }).catch(() => undefined);
    if (!cached) throw new Error(`${url}: cannot fetch (${(e as Error).message})`);
    res = cached;
  }
  if (optional && res.status === 404) return undefined;
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
  const text = await res.text();
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${url}: not valid JSON (${(e as Error).message})`);
  }
}

async function openWeights(url: string, opts: ModelUrlOptions, readers: HttpReader[], layouts: Map<HttpReader, Layout>): Promise<TensorSource> {
  if (/\.index\.json$/i.test(new URL(url).pathname)) {
    const index = (await fetchJson(url, opts, false)) as { weight_map?: Record<string, string> };
    if (!index.weight_map || typeof index.weight_map !== 'object') throw new Error(`${url}: no 'weight_map' object`);
    const parts: TensorSource[] = [];
    for (const shard of new Set(Object.values(index.weight_map))) parts.push(await openWeights(new URL(shard, url).href, opts, readers, layouts));
    return new MergedSource(url, parts);
  }
  const reader = await HttpReader.open(url, opts);
  readers.push(reader);
  if (/\.safetensors$/i.test(new URL(url).pathname)) {
    const layout = await safetensorsLayout(reader);
    if (layout) layouts.set(reader, layout);
    return openSafetensors(reader);
  }
  return openPyTorchCheckpoint(reader);
}

/** Fetches the config and opens the weights (only the safetensors header is downloaded here). */
export async function openModelUrl(url: string, opts: ModelUrlOptions = {}): Promise<UrlModelFiles> {
  const { dir, file } = folderOf(url);
  const configUrl = new URL('config.json', dir).href;
  const raw = await fetchJson(configUrl, opts, true);
  if (!raw) throw new Error(`${dir}: no config.json (the official DualToken config) in this model folder (HTTP 404)`);
  const siglip = await fetchJson(new URL('siglip_config.json', dir).href, opts, true);
  const config = parseConfig(raw, siglip, configUrl);
  const readers: HttpReader[] = [];
  const layouts = new Map<HttpReader, Layout>();
  let weightsUrl = file ?? (opts.weights ? new URL(opts.weights, dir).href : undefined);
  let source: TensorSource;
  if (weightsUrl) source = await openWeights(weightsUrl, opts, readers, layouts);
  else {
    weightsUrl = new URL('model.safetensors', dir).href;
    try {
      source = await openWeights(weightsUrl, opts, readers, layouts);
    } catch (e) {
      if (!/HTTP 404/.test((e as Error).message)) throw e;
      const index = new URL('model.safetensors.index.json', dir).href;
      try {
        source = await openWeights(index, opts, readers, layouts);
      } catch (e2) {
        if (!/HTTP 404/.test((e2 as Error).message)) throw e2;
        throw new Error(`${dir}: no weights found (model.safetensors or model.safetensors.index.json; or give the weights file's URL)`);
      }
      weightsUrl = index;
    }
  }
  const plan = (names: Iterable<string>) => {
    // Each reader gets its tensors' ranges in the order the names will be read.
    const ranges = new Map<HttpReader, { offset: number; length: number }[]>([...layouts.keys()].map((r) => [r, []]));
    for (const name of names) {
      for (const [reader, layout] of layouts) {
        const r = layout.get(name);
        if (r) ranges.get(reader)!.push(r);
      }
    }
    for (const [reader, list] of ranges) reader.plan(list);
  };
  return { config, source, weightsUrl, readers, plan };
}
