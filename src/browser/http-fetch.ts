// The HTTP side of HttpReader (http-reader.ts): resolving the URL, one Range request checked
// (status, Content-Range, length), the file size from Content-Range or a HEAD request, and error
// messages that carry a short plain-text reason from the server.

/** What every request of a reader sends: extra headers (e.g. Authorization) and the abort signal. */
export interface RequestOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** `url` made absolute (against the page's address in a browser). */
export function resolveUrl(url: string): string {
  const base = typeof location !== 'undefined' ? location.href : undefined;
  try {
    return new URL(url, base).href;
  } catch {
    throw new Error(`${url}: not a valid URL`);
  }
}

/** The error of a failed request: URL, what was asked, status, and a short plain-text reason if the server gave one. */
export async function httpError(url: string, res: Response, what: string): Promise<Error> {
  let detail = '';
  try {
    // A short plain-text or JSON reason is worth showing; an HTML error page is not.
    if (/^(text\/plain|application\/json)/i.test(res.headers.get('Content-Type') ?? '')) detail = (await res.text()).slice(0, 200).trim();
    else await res.body?.cancel();
  } catch {
    // body unreadable: the status says enough
  }
  return new Error(`${url}: ${what}: HTTP ${res.status} ${res.statusText}${detail ? ` (${detail})` : ''}`);
}

/** The file size from a 206 answer's Content-Range, else from a HEAD request's Content-Length. */
export async function totalSize(doFetch: typeof fetch, url: string, opts: RequestOptions, res: Response): Promise<number> {
  const m = /^bytes\s+\d+-\d+\/(\d+)$/i.exec(res.headers.get('Content-Range') ?? '');
  if (m) return Number(m[1]);
  // Content-Range not visible (a cross-origin server that does not expose it): ask with HEAD.
  const head = await doFetch(url, { method: 'HEAD', headers: opts.headers, cache: 'no-store', signal: opts.signal });
  const len = Number(head.headers.get('Content-Length') ?? NaN);
  if (!head.ok || !Number.isSafeInteger(len)) {
    throw new Error(`${url}: cannot learn the file size (no readable Content-Range or Content-Length; a cross-origin server must expose Content-Range)`);
  }
  return len;
}

/**
 * Bytes [offset, offset + length) by one Range request, checked: a failure with a status under 500
 * (or a 200, the Range ignored) is marked `permanent` (not worth a retry).
 */
export async function fetchBytes(doFetch: typeof fetch, url: string, opts: RequestOptions, offset: number, length: number): Promise<Uint8Array> {
  const end = offset + length - 1;
  const res = await doFetch(url, { headers: { ...opts.headers, Range: `bytes=${offset}-${end}` }, cache: 'no-store', signal: opts.signal });
  if (res.status !== 206) {
    const err = res.status === 200 ? new Error(`${url}: the server ignored the Range request for bytes ${offset}-${end} (HTTP 200)`) : await httpError(url, res, `bytes ${offset}-${end}`);
    if (res.status === 200) await res.body?.cancel();
    (err as { permanent?: boolean }).permanent = res.status < 500;
    throw err;
  }
  const cr = /^bytes\s+(\d+)-(\d+)\//i.exec(res.headers.get('Content-Range') ?? '');
  if (cr && (Number(cr[1]) !== offset || Number(cr[2]) !== end)) {
    await res.body?.cancel();
    throw new Error(`${url}: asked for bytes ${offset}-${end}, the server sent ${cr[1]}-${cr[2]}`);
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length !== length) throw new Error(`${url}: bytes ${offset}-${end}: got ${bytes.length} bytes, expected ${length} (connection cut?)`);
  return bytes;
}
