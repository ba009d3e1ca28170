// Browser tests: the web build, the static server (scripts/serve.mjs) on a free loopback port,
// and one headless Chromium with WebGPU (Debian's /usr/bin/chromium via playwright-core).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface PathStats {
  requests: number;
  bytes: number;
  ranges: string[];
}

export interface RunningServer {
  url: string;
  port: number;
  /** Per URL path: requests answered with a body, bytes sent, the ranges sent. */
  stats: Map<string, PathStats>;
  resetStats(): void;
  close(): Promise<void>;
}

/** `node scripts/build-web.mjs`: dist/web/ (esbuild, well under a second). Throws with esbuild's output. */
export function buildWeb(): void {
  const r = spawnSync(process.execPath, [join(REPO, 'scripts', 'build-web.mjs')], { cwd: REPO, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`web build failed:\n${r.stdout}\n${r.stderr}`);
}

/** The demo / test server on 127.0.0.1 and a free port. */
export async function startWebServer(): Promise<RunningServer> {
  const mod = (await import(/* @vite-ignore */ pathToFileURL(join(REPO, 'scripts', 'serve.mjs')).href)) as {
    startServer(opts?: { port?: number }): Promise<RunningServer>;
  };
  return mod.startServer({ port: 0 });
}

/** Headless Chromium with WebGPU enabled (as root: no sandbox; no background traffic). */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`);
  const args = [
    '--enable-unsafe-webgpu',
    '--enable-webgpu-developer-features',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

/** Everything the page printed or threw, for failure messages. */
export function collectPageLog(page: Page): string[] {
  const log: string[] = [];
  page.on('console', (m) => log.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  page.on('requestfailed', (r) => log.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText ?? ''}`));
  return log;
}
