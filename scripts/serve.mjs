#!/usr/bin/env node
// @ts-check
// A small static server for the browser demo and tests, on 127.0.0.1 only (a loopback address
// is a secure context for the page, so WebGPU and the Cache API are available there).
//
//   /                   web/            (index.html = the demo, test.html = the browser test page)
//   /dist/...           dist/web/       (the esbuild bundles: npm run build:web)
//   /weights/...        weights/
//   /golden/...         test/fixtures/golden/
//   /models/<name>/...  weights/<name>/ when that folder exists, else test/fixtures/golden/<name>/
//                       (/models/tiny/tokenizer.json, when that folder has none: test/fixtures/tokenizer/tiny-tokenizer.json)
//
// GET and HEAD, single byte ranges (206 + Content-Range, 416 when unsatisfiable, Accept-Ranges
// on every file), ETag / Last-Modified with If-None-Match / If-Modified-Since (304) and If-Range,
// MIME types by extension, no directory listings, nothing outside the roots.
//
// Usage: npm run web   (PORT=8787 by default). Importable: startServer() returns the address,
// per-path counters of the bytes sent (the browser test counts model downloads with them) and close().
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.d.ts': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.wgsl': 'text/wgsl; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.safetensors': 'application/octet-stream',
  '.pt': 'application/octet-stream',
  '.bin': 'application/octet-stream',
};

/** @param {string} file */
export function mimeType(file) {
  return MIME[/** @type {keyof typeof MIME} */ (extname(file).toLowerCase())] ?? 'application/octet-stream';
}

/**
 * The file a URL path maps to, or undefined (outside every root, or a path with `..`).
 * @param {string} urlPath decoded path, starting with '/'
 * @param {string} repo
 * @returns {string | undefined}
 */
export function resolvePath(urlPath, repo = REPO) {
  if (urlPath.includes('\0')) return undefined;
  const parts = urlPath.split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '..' || p === '.' || p.includes('\\'))) return undefined;
  /** @type {[string, string[]]} */
  let target;
  if (parts[0] === 'dist') target = [join(repo, 'dist', 'web'), parts.slice(1)];
  else if (parts[0] === 'weights') target = [join(repo, 'weights'), parts.slice(1)];
  else if (parts[0] === 'golden') target = [join(repo, 'test', 'fixtures', 'golden'), parts.slice(1)];
  else if (parts[0] === 'models') {
    if (parts.length < 2) return undefined;
    const own = join(repo, 'weights', parts[1]);
    const base = existsSync(own) ? own : join(repo, 'test', 'fixtures', 'golden', parts[1]);
    // The tiny model (golden case or weights/tiny/) has no tokenizer.json: the tiny test tokenizer stands in for it.
    if (parts[1] === 'tiny' && parts.length === 3 && parts[2] === 'tokenizer.json' && !existsSync(join(base, 'tokenizer.json'))) {
      return join(repo, 'test', 'fixtures', 'tokenizer', 'tiny-tokenizer.json');
    }
    target = [base, parts.slice(2)];
  } else target = [join(repo, 'web'), parts.length ? parts : ['index.html']];
  const [root, rest] = target;
  const file = normalize(join(root, ...rest));
  if (file !== root && !file.startsWith(root + sep)) return undefined;
  return file;
}

/**
 * One `bytes=a-b`, `bytes=a-` or `bytes=-n` range of a file of `size` bytes.
 * @param {string} header
 * @param {number} size
 * @returns {{start: number, end: number} | 'unsatisfiable' | undefined} end inclusive; undefined = ignore the header
 */
export function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // malformed or multi-range: send the whole file
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/**
 * @typedef {{ requests: number, bytes: number, ranges: string[] }} PathStats
 * @typedef {{ url: string, port: number, stats: Map<string, PathStats>, resetStats(): void, close(): Promise<void> }} RunningServer
 */

/**
 * @param {{ port?: number, repo?: string, log?: boolean }} [opts]
 * @returns {Promise<RunningServer>}
 */
export function startServer(opts = {}) {
  const repo = opts.repo ?? REPO;
  /** @type {Map<string, PathStats>} */
  const stats = new Map();
  const server = createServer((req, res) => {
    const send = (/** @type {number} */ status, /** @type {string} */ text) => {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(405, 'method not allowed\n');
    }
    let urlPath;
    try {
      urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      return send(400, 'bad request path\n');
    }
    const file = resolvePath(urlPath, repo);
    let st;
    try {
      st = file ? statSync(file) : undefined;
    } catch {
      st = undefined;
    }
    if (!file || !st || !st.isFile()) return send(404, `not found: ${urlPath}\n`);

    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const lastModified = new Date(Math.floor(st.mtimeMs / 1000) * 1000).toUTCString();
    const headers = {
      'Content-Type': mimeType(file),
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'Last-Modified': lastModified,
      // Revalidate every time: files change while developing; the weights are cached by the page itself (Cache API).
      'Cache-Control': 'no-cache',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'X-Content-Type-Options': 'nosniff',
    };
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    if ((inm && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) || (!inm && ims && Date.parse(ims) >= Date.parse(lastModified))) {
      res.writeHead(304, headers);
      return res.end();
    }

    let start = 0;
    let end = st.size - 1;
    let status = 200;
    const rangeHeader = req.headers.range;
    const ifRange = req.headers['if-range'];
    const rangeApplies = rangeHeader && (!ifRange || ifRange === etag || ifRange === lastModified);
    if (rangeHeader && rangeApplies) {
      const r = parseRange(rangeHeader, st.size);
      if (r === 'unsatisfiable') {
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${st.size}`, 'Content-Length': 0 });
        return res.end();
      }
      if (r) {
        ({ start, end } = r);
        status = 206;
      }
    }
    const length = st.size === 0 ? 0 : end - start + 1;
    /** @type {Record<string, string | number>} */
    const out = { ...headers, 'Content-Length': length };
    if (status === 206) out['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
    res.writeHead(status, out);
    const s = stats.get(urlPath) ?? { requests: 0, bytes: 0, ranges: [] };
    stats.set(urlPath, s);
    s.requests++;
    if (req.method === 'HEAD' || length === 0) return res.end();
    s.bytes += length;
    s.ranges.push(status === 206 ? `${start}-${end}` : 'all');
    if (opts.log) console.log(`${status} ${urlPath}${status === 206 ? ` bytes ${start}-${end}` : ''}`);
    createReadStream(file, { start, end }).pipe(res);
  });
  return new Promise((resolveStart, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      resolveStart({
        url: `http://127.0.0.1:${port}`,
        port,
        stats,
        resetStats: () => stats.clear(),
        close: () =>
          new Promise((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const port = Number(process.env.PORT ?? 8787);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`PORT=${process.env.PORT}: not a port number`);
    process.exit(2);
  }
  if (!existsSync(join(REPO, 'dist', 'web', 'demo.js'))) console.warn('dist/web/demo.js is missing: run `npm run build:web` first');
  startServer({ port, log: process.argv.includes('--log') }).then(
    (s) => console.log(`DualToken demo: ${s.url}/   (models: ${s.url}/models/<name>/ = weights/<name>/ or test/fixtures/golden/<name>/)`),
    (e) => {
      console.error(`cannot listen on 127.0.0.1:${port}: ${e.message}`);
      process.exit(1);
    },
  );
}
