#!/usr/bin/env node
// @ts-check
// Web build (esbuild): the browser engine and its pages, into dist/web/.
//
//   dist/web/dualtoken.js (+ .map)  ESM bundle of src/browser/index.ts, the WGSL kernels inside
//                                   (package entry `dualtoken-webgpu/browser`)
//   dist/web/dualtoken.d.ts         re-exports the declarations tsc writes to dist/browser/ (npm run build)
//   dist/web/dualtoken-worker-thread.js  the engine in a Web Worker (src/browser/worker.ts), kernels inside
//   dist/web/dualtoken-worker.js    the page's client of that worker (src/browser/worker-client.ts, no engine
//                                   code; package entry `dualtoken-webgpu/worker`), + .d.ts
//   dist/web/demo.js, test.js       the pages web/demo.ts and web/test.ts; they import the engine
//                                   from ./dualtoken.js at run time (so the pages exercise the
//                                   published bundle, not a second copy of it)
//
// The kernels: `import shaders from 'virtual:shaders'` (src/browser/shaders.ts) resolves to a
// module made here from every shaders/*.wgsl file ({ name: WGSL text }); nothing is generated
// into the source tree. `import wasm from 'virtual:jpeg-turbo-wasm'` (src/browser/jpeg.ts)
// resolves to the bytes of @cwasm/jpeg-turbo's jpeg-turbo.wasm (libjpeg-turbo, the JPEG decoder),
// embedded as a Uint8Array (esbuild's binary loader, ~140 KB).
//
// Usage: node scripts/build-web.mjs [--watch] [--minify]
import { build, context } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(REPO, 'dist', 'web');
/** The kernels' folders (as src/node/shaders.ts reads them): single-kernel ops, and the op modules' variants. */
const SHADER_DIRS = [join(REPO, 'shaders'), join(REPO, 'src', 'ops')];
const BROWSER_INDEX = join(REPO, 'src', 'browser', 'index.ts');
const WORKER_CLIENT = join(REPO, 'src', 'browser', 'worker-client.ts');

const watch = process.argv.includes('--watch');
const minify = process.argv.includes('--minify');

/** Every *.wgsl under SHADER_DIRS (recursively), each under its file name. */
function wgslFiles() {
  /** @type {string[]} */
  const files = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.wgsl')) files.push(join(dir, e.name));
    }
  };
  SHADER_DIRS.forEach(walk);
  return files.sort();
}

/** Every kernel as a module `export default { name: text }`. @type {import('esbuild').Plugin} */
const shadersPlugin = {
  name: 'dualtoken-shaders',
  setup(b) {
    b.onResolve({ filter: /^virtual:shaders$/ }, () => ({ path: 'shaders', namespace: 'dualtoken-shaders' }));
    b.onLoad({ filter: /.*/, namespace: 'dualtoken-shaders' }, () => {
      const files = wgslFiles();
      if (files.length === 0) return { errors: [{ text: `no .wgsl files in ${SHADER_DIRS.join(', ')}` }] };
      /** @type {Record<string, string>} */
      const map = {};
      for (const f of files) {
        const name = f.slice(f.lastIndexOf('/') + 1, -5);
        if (map[name] !== undefined) return { errors: [{ text: `two kernels named '${name}' (${f})` }] };
        map[name] = readFileSync(f, 'utf8');
      }
      return {
        contents: `export default ${JSON.stringify(map)};`,
        loader: 'js',
        watchDirs: SHADER_DIRS,
        watchFiles: files,
      };
    });
  },
};

/** `virtual:jpeg-turbo-wasm`: the libjpeg-turbo WebAssembly module's bytes. @type {import('esbuild').Plugin} */
const jpegWasmPlugin = {
  name: 'dualtoken-jpeg-wasm',
  setup(b) {
    b.onResolve({ filter: /^virtual:jpeg-turbo-wasm$/ }, () => ({ path: createRequire(import.meta.url).resolve('@cwasm/jpeg-turbo/jpeg-turbo.wasm'), namespace: 'dualtoken-jpeg-wasm' }));
    b.onLoad({ filter: /.*/, namespace: 'dualtoken-jpeg-wasm' }, (args) => ({ contents: readFileSync(args.path), loader: 'binary' }));
  },
};

/**
 * Pages import the engine as '../src/browser/index.js' and the worker client as
 * '../src/browser/worker-client.js'; in the page bundles those become './dualtoken.js' and
 * './dualtoken-worker.js'. @type {import('esbuild').Plugin}
 */
const engineExternal = {
  name: 'dualtoken-engine-external',
  setup(b) {
    b.onResolve({ filter: /src\/browser\/(index|worker-client)(\.js|\.ts)?$/ }, (args) => {
      const target = resolve(args.resolveDir, args.path.replace(/\.js$/, '.ts'));
      const is = (/** @type {string} */ f) => target === f || target === f.replace(/\.ts$/, '');
      if (is(BROWSER_INDEX)) return { path: './dualtoken.js', external: true };
      if (is(WORKER_CLIENT)) return { path: './dualtoken-worker.js', external: true };
      return undefined;
    });
  },
};

/** @type {import('esbuild').BuildOptions} */
const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome113', 'firefox141', 'safari26'],
  sourcemap: true,
  minify,
  logLevel: 'warning',
  legalComments: 'linked',
  metafile: true,
  // The engine is browser-safe; a Node import reaching the bundle is a bug, reported as an error.
  external: [],
};

/** @type {import('esbuild').BuildOptions[]} */
const builds = [
  { ...common, entryPoints: { dualtoken: BROWSER_INDEX }, outdir: OUT, plugins: [shadersPlugin, jpegWasmPlugin] },
  { ...common, entryPoints: { 'dualtoken-worker-thread': join(REPO, 'src', 'browser', 'worker.ts') }, outdir: OUT, plugins: [shadersPlugin, jpegWasmPlugin] },
  // The client holds no engine code (type imports only); a Node import or the engine reaching it is an error.
  { ...common, entryPoints: { 'dualtoken-worker': WORKER_CLIENT }, outdir: OUT, plugins: [] },
  { ...common, entryPoints: { demo: join(REPO, 'web', 'demo.ts'), test: join(REPO, 'web', 'test.ts') }, outdir: OUT, plugins: [engineExternal, shadersPlugin, jpegWasmPlugin] },
];

function writeTypes() {
  // tsc (npm run build) emits src/browser/*.d.ts into dist/browser/; point the bundle at them.
  const dts = join(REPO, 'dist', 'browser', 'index.d.ts');
  writeFileSync(join(OUT, 'dualtoken.d.ts'), `// Types of dualtoken.js: the declarations tsc emits for src/browser/index.ts (npm run build).\nexport * from '../browser/index.js';\n`);
  writeFileSync(
    join(OUT, 'dualtoken-worker.d.ts'),
    `// Types of dualtoken-worker.js: the declarations tsc emits for src/browser/worker-client.ts (npm run build).\nexport * from '../browser/worker-client.js';\n`,
  );
  writeFileSync(join(OUT, 'dualtoken-worker-thread.d.ts'), `// dualtoken-worker-thread.js is a Web Worker script (new Worker(url, { type: 'module' })): it exports nothing.\nexport {};\n`);
  if (!existsSync(dts)) console.warn(`note: ${relative(REPO, dts)} does not exist yet: run \`npm run build\` (tsc) for the bundle's types`);
}

/** @param {import('esbuild').Metafile | undefined} meta */
function report(meta) {
  if (!meta) return;
  for (const [file, o] of Object.entries(meta.outputs)) {
    if (file.endsWith('.js')) console.log(`  ${file.padEnd(36)} ${(o.bytes / 1024).toFixed(1).padStart(7)} KiB`);
  }
}

mkdirSync(OUT, { recursive: true });
const t0 = performance.now();
if (watch) {
  for (const opts of builds) {
    const ctx = await context(opts);
    await ctx.watch();
  }
  writeTypes();
  console.log('watching src/, web/ and shaders/ (dist/web/)');
} else {
  let failed = 0;
  for (const opts of builds) {
    try {
      report((await build(opts)).metafile);
    } catch {
      failed++; // esbuild has printed the errors; build the other bundles anyway
    }
  }
  writeTypes();
  if (failed) {
    console.error(`web build failed (${failed} of ${builds.length} builds)`);
    process.exit(1);
  }
  console.log(`web build: dist/web/ in ${Math.round(performance.now() - t0)} ms`);
}
