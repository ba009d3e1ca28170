// Where a first run's time goes: per pipeline, what its first dispatch costs over a steady one.
// On a CPU driver (lavapipe) the driver compiles each pipeline at its first dispatch, so this is
// the compile table a new user pays once per machine; with a warm Mesa shader cache it is ~0.
//
//   npm run bench:cold -- [--model DIR] [--batch N] [--warm] [--json FILE]
//
// Unless --warm, MESA_SHADER_CACHE_DIR points at a new empty folder (set before the device is
// created). Per stage (encode, decode at --batch, default 1) the recorded program is profiled
// twice with wall clock around each dispatch submitted alone (Program.profile('wall')): the first
// minus the second, summed per pipeline, is its compile time. The default model is the bundled
// tiny one (weights/tiny), what `npm run demo` runs.
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DispatchTiming, Program } from '../src/core/program.js';
import { writeFile } from '../src/node/io.js';
import { loadDualToken } from '../src/node/load.js';
import { loadShaders, shaderDirs } from '../src/node/shaders.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'); // dist-bench/bench -> repo

interface PipelineRow {
  pipeline: string;
  stage: string;
  dispatches: number;
  firstMs: number;
  steadyMs: number;
  compileMs: number;
}

function parseArgs(argv: string[]): { model: string; batch: number; warm: boolean; json: string } {
  const o = { model: join(ROOT, 'weights', 'tiny'), batch: 1, warm: false, json: join(ROOT, 'bench', 'results', 'cold-start.json') };
  for (let i = 0; i < argv.length; i++) {
    const value = () => argv[++i] ?? (() => { throw new Error(`${argv[i - 1]} needs a value`); })();
    if (argv[i] === '--model') o.model = value();
    else if (argv[i] === '--batch') o.batch = Number(value());
    else if (argv[i] === '--json') o.json = value();
    else if (argv[i] === '--warm') o.warm = true;
    else throw new Error(`unknown option ${argv[i]}`);
  }
  return o;
}

/** Per pipeline of `prog`: first and steady wall time of its dispatches. */
async function compileTimes(stage: string, prog: Program): Promise<PipelineRow[]> {
  const first = (await prog.profile('wall')).timings;
  const steady = (await prog.profile('wall')).timings;
  const rows = new Map<string, PipelineRow>();
  first.forEach((t: DispatchTiming, i) => {
    const r = rows.get(t.pipeline) ?? { pipeline: t.pipeline, stage, dispatches: 0, firstMs: 0, steadyMs: 0, compileMs: 0 };
    r.dispatches++;
    r.firstMs += t.ms;
    r.steadyMs += steady[i].ms;
    r.compileMs = r.firstMs - r.steadyMs;
    rows.set(t.pipeline, r);
  });
  return [...rows.values()];
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (!o.warm) process.env.MESA_SHADER_CACHE_DIR = mkdtempSync(join(tmpdir(), 'dualtoken-cold-'));
  const load0 = performance.now();
  const model = await loadDualToken(o.model, { silenceAdapterWarnings: true, shaders: loadShaders(shaderDirs(ROOT)) });
  const loadMs = performance.now() - load0;
  try {
    const rows = [...(await compileTimes('encode', model.encoderProgram(o.batch))), ...(await compileTimes('decode', model.decoderProgram(o.batch)))];
    rows.sort((a, b) => b.compileMs - a.compileMs);
    const total = (stage?: string) => rows.filter((r) => !stage || r.stage === stage).reduce((s, r) => s + r.compileMs, 0);
    console.log(`adapter: ${model.gpu.describe()}; model ${o.model}, B=${o.batch}; shader cache ${o.warm ? 'as it is' : `empty (${process.env.MESA_SHADER_CACHE_DIR})`}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(`${'compile ms'.padStart(10)} ${'dispatches'.padStart(10)}  stage   pipeline (kernel|placeholders|override constants)`);
    for (const r of rows) console.log(`${r.compileMs.toFixed(0).padStart(10)} ${String(r.dispatches).padStart(10)}  ${r.stage.padEnd(7)} ${r.pipeline}`);
    console.log(`total: ${(total() / 1000).toFixed(1)} s in ${rows.length} pipelines (encode ${(total('encode') / 1000).toFixed(1)} s, decode ${(total('decode') / 1000).toFixed(1)} s); model load ${(loadMs / 1000).toFixed(1)} s`);
    writeFile(o.json, JSON.stringify({ adapter: model.gpu.describe(), date: new Date().toISOString(), model: o.model, batch: o.batch, cache: o.warm ? 'warm' : 'empty', loadavg: loadavg(), totalMs: total(), pipelines: rows }, null, 1));
    console.log(`wrote ${o.json}`);
  } finally {
    model.dispose();
  }
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(`cold-start: ${e.message}`);
    process.exit(1);
  },
);
