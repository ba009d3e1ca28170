// The package as a user gets it: `npm pack` of this repository, installed into a scratch project
// without optional dependencies (so without `webgpu`, Dawn's native binaries), then
// - a page importing `dualtoken-webgpu/browser`, `/worker` and `/core` bundles with esbuild (the
//   repo's own esbuild, called from the scratch project) and type-checks against the package's
//   declarations;
// - `dualtoken-webgpu/core` imports in Node;
// - the Node entry imports, and asking it for a device fails with one line naming the package.
// Needs `npm run build` (dist/, as `npm test` does first); the web bundles are built here.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, buildWeb } from './helpers/browser.js';

const MISSING = "dualtoken-webgpu: the Node entry needs the optional package 'webgpu' (npm install webgpu@0.6.2)";

let tmp: string;
let app: string;
let packed: string[] = [];

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

beforeAll(() => {
  if (!existsSync(join(REPO, 'dist', 'node', 'index.js')) || !existsSync(join(REPO, 'dist', 'browser', 'index.d.ts'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  }
  buildWeb();
  tmp = mkdtempSync(join(tmpdir(), 'dualtoken-pack-'));
  // --ignore-scripts: dist/ is already built (prepack would rebuild it).
  const out = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], REPO)) as { filename: string; files: { path: string }[] }[];
  packed = out[0].files.map((f) => f.path);
  app = join(tmp, 'app');
  run('mkdir', ['-p', app], tmp);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }));
  run('npm', ['install', join(tmp, out[0].filename), '--omit=optional', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], app);
}, 300_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the packed package, installed without optional dependencies', () => {
  it('ships the browser and worker bundles and their types, not the test pages', () => {
    for (const f of [
      'dist/web/dualtoken.js',
      'dist/web/dualtoken.d.ts',
      'dist/web/dualtoken-worker.js',
      'dist/web/dualtoken-worker.d.ts',
      'dist/web/dualtoken-worker-thread.js',
      'dist/web/dualtoken-worker-thread.d.ts',
      'dist/browser/index.d.ts',
      'dist/browser/worker-client.d.ts',
      'dist/node/index.js',
      'dist/core/index.js',
    ]) {
      expect(packed, f).toContain(f);
    }
    expect(packed.filter((f) => /^dist\/web\/(test|demo)\./.test(f))).toEqual([]);
    expect(existsSync(join(app, 'node_modules', 'dualtoken-webgpu', 'package.json'))).toBe(true);
    expect(existsSync(join(app, 'node_modules', 'webgpu')), 'webgpu is optional: --omit=optional leaves it out').toBe(false);
  });

  it('bundles a page importing dualtoken-webgpu/browser, /worker and /core with esbuild, and type-checks it', async () => {
    writeFileSync(
      join(app, 'page.ts'),
      [
        "import { loadDualTokenFromUrl, imageToRgb, type DualToken } from 'dualtoken-webgpu/browser';",
        "import { loadDualTokenInWorker, type EncodeResult } from 'dualtoken-webgpu/worker';",
        "import { parseConfig } from 'dualtoken-webgpu/core';",
        'export async function main(file: Blob): Promise<[DualToken, EncodeResult, unknown]> {',
        "  const model = await loadDualTokenFromUrl('/models/tiny/');",
        '  const rgb = await imageToRgb(file, { gpu: model.gpu });',
        "  const inWorker = await loadDualTokenInWorker('/models/tiny/');",
        '  const codes = await inWorker.encodeImages([file]);',
        '  return [model, codes, [rgb, parseConfig]];',
        '}',
        '',
      ].join('\n'),
    );
    const esbuild = (await import('esbuild')) as typeof import('esbuild');
    const result = await esbuild.build({
      absWorkingDir: app,
      entryPoints: ['page.ts'],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      outfile: 'out/page.js',
      write: true,
      logLevel: 'silent',
      metafile: true,
    });
    expect(result.errors).toEqual([]);
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((f) => f.includes('dualtoken-webgpu/dist/web/dualtoken.js'))).toBe(true);
    expect(inputs.some((f) => f.includes('dualtoken-webgpu/dist/web/dualtoken-worker.js'))).toBe(true);
    expect(inputs.filter((f) => /node_modules\/webgpu\//.test(f))).toEqual([]);
    const js = readFileSync(join(app, 'out', 'page.js'), 'utf8');
    expect(js).toContain('dualtoken-worker-thread.js'); // the client starts the worker script next to it
    // Types: the package's declarations resolve through `exports` (moduleResolution bundler).
    const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const webgpuTypes = join(REPO, 'node_modules', '@webgpu', 'types');
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'es2022', module: 'esnext', moduleResolution: 'bundler', lib: ['es2022', 'dom'], strict: true, noEmit: true, skipLibCheck: true, typeRoots: [join(REPO, 'node_modules', '@types'), join(REPO, 'node_modules', '@webgpu')], types: [webgpuTypes] },
        files: ['page.ts'],
      }),
    );
    run(process.execPath, [tsc, '-p', 'tsconfig.json'], app);
  }, 120_000);

  it('imports ./core in Node; the Node entry imports, and asks for the optional package when a device is wanted', () => {
    const script = [
      "const core = await import('dualtoken-webgpu/core');",
      "if (typeof core.parseConfig !== 'function') throw new Error('core: no parseConfig');",
      "const node = await import('dualtoken-webgpu');",
      'try { await node.createNodeGpu(); console.log("created"); } catch (e) { console.log(e.message); }',
      "try { await node.loadDualToken('node_modules/dualtoken-webgpu/weights/tiny'); console.log('loaded'); } catch (e) { console.log(e.message); }",
    ].join('\n');
    writeFileSync(join(app, 'node-entry.mjs'), script);
    const lines = run(process.execPath, ['node-entry.mjs'], app).trim().split('\n');
    expect(lines).toEqual([MISSING, MISSING]);
  });
});
