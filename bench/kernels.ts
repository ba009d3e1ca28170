// The kernel lab: every variant of each hot op at the released model's sizes, side by side, then
// the peers (TF.js-WebGPU, onnxruntime-web, onnxruntime-node) on the same shapes in the same run.
//
//   npm run bench -- [--quick] [--ops id,id] [--reps N] [--no-peers | --peers-json FILE]
//                    [--json bench/results/kernels.json] [--dawn-flags '...']
//
// About 7-8 minutes on 2 cores: our pass (~1.5 min), the peers (bench/peers/run.mjs in a child
// process, ~4 min), our second pass; best and median are over both passes, so that a change of
// load on a shared machine while the peers run shows in our numbers too.
//
// Per op and variant: the first run (pipeline compilation and weight packing included) is
// reported apart; its output is checked against a float64 CPU reference on sampled elements
// (error over the largest reference value must stay under the variant's tolerance, 1e-4 for f32,
// or the variant is FAILED and not timed); then steady runs timed with GPU timestamps
// (Program.profile), taken in turns across the variants, min and median. The adapter's
// arithmetic ceiling comes from shaders/fma_peak.wgsl (multiply-adds on registers only).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureVariants, rate, timeProgram, type VariantResult } from '../src/core/autotune.js';
import { attentionCase, conv2dCase, groupNormCase, linearCase, rqSearchCase, type OpCase } from '../src/core/op-cases.js';
import { KernelLibrary } from '../src/core/kernels.js';
import { Program } from '../src/core/program.js';
import { VARIANTS, isCpuAdapter, isFullPrecision, variantsForClass, variantsOf } from '../src/core/variants.js';
import { createNodeGpu } from '../src/node/gpu.js';
import { loadShaders } from '../src/node/shaders.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'); // dist-bench/bench -> repo
const WEBGPU_PEERS = ['tfjs-webgpu', 'ort-web', 'ort-node'];

interface Options {
  quick: boolean;
  ops?: string[];
  reps: number;
  peers: boolean;
  peersJson?: string;
  json: string;
  dawnFlags?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, reps: 3, peers: true, json: join(ROOT, 'bench', 'results', 'kernels.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--ops') o.ops = v().split(',').filter(Boolean);
    else if (a === '--reps') o.reps = Number(v());
    else if (a === '--no-peers') o.peers = false;
    else if (a === '--peers-json') o.peersJson = v();
    else if (a === '--json') o.json = resolve(v());
    else if (a === '--dawn-flags') o.dawnFlags = v();
    else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench -- [--quick] [--ops ${CASES.map((c) => c.id).join(',')}]
  [--reps N=3 per pass (2 with --quick)] [--no-peers | --peers-json FILE] [--json FILE] [--dawn-flags 'enable-dawn-features=...']`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (o.quick && !argv.includes('--reps')) o.reps = 2;
  if (!(o.reps >= 1)) throw new Error('--reps must be >= 1');
  return o;
}

// ---------------------------------------------------------------- the ops

interface BenchCase {
  /** The peers' op id where they run the same op. */
  id: string;
  make: () => OpCase;
}

const CASES: BenchCase[] = [
  { id: 'linear_1152x1152', make: () => linearCase(729, 1152, 1152) },
  { id: 'linear_1152x4304', make: () => linearCase(729, 1152, 4304, { gelu: true }) },
  { id: 'attention_16x729x72', make: () => attentionCase(16, 729, 72) },
  { id: 'conv3x3_512_48x48', make: () => conv2dCase(512, 512, 48, 48, 3) },
  { id: 'conv3x3_128_192x192', make: () => conv2dCase(128, 128, 192, 192, 3) },
  { id: 'conv1x1_512_96x96', make: () => conv2dCase(512, 256, 96, 96, 1, { title: 'conv1x1 512->256 @ 96x96' }) },
  { id: 'conv1x1_1024_24x24', make: () => conv2dCase(1024, 1024, 24, 24, 1, { title: 'conv1x1 1024->1024 @ 24x24' }) },
  { id: 'groupnorm_silu_512_96x96', make: () => groupNormCase(512, 96, 96) },
  { id: 'rq_search_729x16384x32_d8', make: () => rqSearchCase(729, 16384, 32, 8) },
];

// ---------------------------------------------------------------- the FMA ceiling

interface Ceiling {
  best: number;
  median: number;
  /** Per accumulator count: GFLOP/s best/median. */
  byAcc: { acc: number; best: number; median: number }[];
}

async function fmaCeiling(kernels: KernelLibrary, reps: number): Promise<Ceiling> {
  const invocations = 64 * 512;
  const byAcc: Ceiling['byAcc'] = [];
  const progs: { acc: number; prog: Program; flops: number; times: number[] }[] = [];
  for (const acc of [8, 12, 16]) {
    const iters = Math.round(32768 / acc);
    const prog = new Program(kernels, `fma_peak ACC=${acc}`);
    const out = prog.alloc([invocations], 'out');
    const flops = 8 * acc * iters * invocations;
    prog.dispatch({ kernel: 'fma_peak', defines: { ACC: acc }, uniforms: { iters, a: 0.999, b: 1e-4 }, bind: { out }, groups: invocations / 64, cost: { flops } });
    await prog.run();
    progs.push({ acc, prog, flops, times: [] });
  }
  for (let rep = 0; rep < reps; rep++) for (const p of progs) p.times.push(await timeProgram(p.prog));
  for (const p of progs) {
    const s = [...p.times].sort((a, b) => a - b);
    byAcc.push({ acc: p.acc, best: p.flops / s[0] / 1e6, median: p.flops / s[s.length >> 1] / 1e6 });
    p.prog.destroy();
  }
  return { best: Math.max(...byAcc.map((b) => b.best)), median: Math.max(...byAcc.map((b) => b.median)), byAcc };
}

// ---------------------------------------------------------------- peers

interface PeerResult {
  peer: string;
  op_id: string;
  best: number | null;
  median: number | null;
  first_ms?: number;
  error?: string;
}

async function runPeers(opts: Options, ops: string[]): Promise<{ file: string; data: { results: PeerResult[]; [k: string]: unknown } }> {
  if (opts.peersJson) return { file: opts.peersJson, data: JSON.parse(readFileSync(opts.peersJson, 'utf8')) };
  const file = join(tmpdir(), `dualtoken-peers-${process.pid}.json`);
  const args = [join(ROOT, 'bench', 'peers', 'run.mjs'), '--json', file, '--ops', ops.join(',')];
  if (opts.quick) args.push('--reps', '3', '--op-budget', '6');
  console.log(`\nrunning the peers: node ${args.join(' ')}`);
  await new Promise<void>((ok, fail) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: ROOT });
    child.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`peers exited with ${code}`))));
    child.on('error', fail);
  });
  const data = JSON.parse(readFileSync(file, 'utf8'));
  const keep = join(ROOT, 'bench', 'results', 'peers.json');
  writeFileSync(keep, JSON.stringify(data, null, 1));
  return { file: keep, data };
}

// ---------------------------------------------------------------- report

const fmt = (v: number | undefined | null, d = 2) => (v === undefined || v === null || !Number.isFinite(v) ? '-' : v.toFixed(d));

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i < 2 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

interface OpReport {
  id: string;
  title: string;
  op: string;
  unit: string;
  work: number;
  variants: (VariantResult & {
    best?: number;
    median?: number;
    pctCeilingBest?: number;
    pctCeilingMedian?: number;
    /** Share of the direct FLOPs the variant does (Winograd 4/9): best/median are then effective rates. */
    flopsShare?: number;
  })[];
  /** Fastest variant held to the f32 bound. */
  bestVariant?: string;
  /** Fastest reduced-precision variant (e.g. f16 weights), reported apart. */
  bestReducedVariant?: string;
  ratioReduced?: number;
  peers?: { peer: string; best: number | null; median: number | null; error?: string }[];
  bestPeer?: { peer: string; best: number };
  ratio?: number;
}

/** One pass over the ops: the FMA ceiling, then every variant of every op. */
async function pass(kernels: KernelLibrary, cases: BenchCase[], reps: number, label: string): Promise<{ ceiling: Ceiling; results: Map<string, VariantResult[]> }> {
  const gpu = kernels.gpu;
  const log = (s: string) => console.log(`  ${s}`);
  console.log(`\n== ${label}: load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const ceiling = await fmaCeiling(kernels, reps);
  console.log(`FMA-only ceiling: ${fmt(ceiling.best)} GFLOP/s best, ${fmt(ceiling.median)} median (${ceiling.byAcc.map((b) => `ACC=${b.acc}: ${fmt(b.best)}/${fmt(b.median)}`).join(', ')})`);
  const results = new Map<string, VariantResult[]>();
  for (const bc of cases) {
    const c = bc.make();
    const variants = variantsForClass(gpu, c.op, c.cls); // a variant that delegates this class would time its delegate again
    console.log(`${c.title}: ${variants.join(', ')}`);
    results.set(bc.id, await measureVariants(kernels, c, variants, { reps, log }));
  }
  return { ceiling, results };
}

const medianOf = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const loadStart = loadavg();
  const gpu = await createNodeGpu(opts.dawnFlags ? { dawnFlags: opts.dawnFlags.split(' ') } : {});
  const kernels = new KernelLibrary(gpu, loadShaders(process.env.DUALTOKEN_SHADERS ?? join(ROOT, 'shaders'))); // the env: bundled in .gpu/ (bench/gpu-pack.sh)
  console.log(`adapter: ${gpu.describe()}${isCpuAdapter(gpu) ? ' (CPU adapter)' : ''}; features: ${[...gpu.device.features].join(', ')}`);
  console.log(`default variants: ${JSON.stringify(variantsOf(kernels).describe())}`);
  console.log(`reps ${opts.reps} per pass; dawn flags: ${opts.dawnFlags ?? process.env.DUALTOKEN_DAWN_FLAGS ?? 'none'}`);
  const cases = CASES.filter((c) => !opts.ops || opts.ops.includes(c.id));
  const peerOps = cases.map((c) => c.id).filter((id) => !id.startsWith('conv1x1') && !id.startsWith('rq_search'));
  const withPeers = (opts.peers || !!opts.peersJson) && peerOps.length > 0;

  // Ours before and after the peers (when they run), so that a change of load on a shared
  // machine during the peers' minutes shows up in our numbers too; best and median over both.
  const passes = [await pass(kernels, cases, opts.reps, 'ours, pass 1')];
  const loadOurs = loadavg();
  let peers: Awaited<ReturnType<typeof runPeers>> | undefined;
  if (withPeers) {
    try {
      peers = await runPeers(opts, peerOps);
    } catch (e) {
      console.log(`peers: ${(e as Error).message}`);
    }
    if (!opts.peersJson) passes.push(await pass(kernels, cases, opts.reps, 'ours, pass 2'));
  }
  gpu.destroy();
  const ceiling = {
    best: Math.max(...passes.map((p) => p.ceiling.best)),
    median: medianOf(passes.map((p) => p.ceiling.median)),
    passes: passes.map((p) => p.ceiling),
  };

  const reports: OpReport[] = cases.map((bc) => {
    const c = bc.make();
    const first = passes[0].results.get(bc.id)!;
    const variants = first.map((v0) => {
      const all = passes.map((p) => p.results.get(bc.id)!.find((v) => v.variant === v0.variant)!);
      const times = all.flatMap((v) => v.timesMs);
      const failed = all.find((v) => v.status !== 'ok');
      const v = { ...v0, status: failed?.status ?? 'ok', err: Math.max(...all.map((x) => x.err ?? 0)), error: failed?.error, timesMs: failed ? [] : times } as OpReport['variants'][number];
      v.bestMs = v.timesMs.length ? Math.min(...v.timesMs) : undefined;
      v.medianMs = v.timesMs.length ? medianOf(v.timesMs) : undefined;
      v.best = rate(c.work, v.bestMs);
      v.median = rate(c.work, v.medianMs);
      const share = VARIANTS[c.op].find((i) => i.name === v.variant)?.flopsShare?.[c.cls];
      if (share) v.flopsShare = share;
      if (c.unit === 'GFLOP/s') {
        v.pctCeilingBest = v.best && (100 * v.best) / ceiling.best;
        v.pctCeilingMedian = v.median && (100 * v.median) / ceiling.median;
      }
      return v;
    });
    const r: OpReport = { id: bc.id, title: c.title, op: c.op, unit: c.unit, work: c.work, variants };
    const pickBest = (vs: typeof variants) => (vs.length ? vs.reduce((a, b) => (b.best! > a.best! ? b : a)).variant : undefined);
    const timed = variants.filter((v) => v.best !== undefined);
    r.bestVariant = pickBest(timed.filter((v) => isFullPrecision(c.op, v.variant)));
    r.bestReducedVariant = pickBest(timed.filter((v) => !isFullPrecision(c.op, v.variant)));
    return r;
  });

  if (peers) {
    for (const r of reports) {
      const rows = peers.data.results.filter((p) => p.op_id === r.id);
      if (!rows.length) continue;
      r.peers = rows.map((p) => ({ peer: p.peer, best: p.best, median: p.median, error: p.error }));
      const web = rows.filter((p) => WEBGPU_PEERS.includes(p.peer) && p.best !== null);
      if (!web.length) continue;
      const bp = web.reduce((a, b) => (b.best! > a.best! ? b : a));
      r.bestPeer = { peer: bp.peer, best: bp.best! };
      const ours = r.variants.find((v) => v.variant === r.bestVariant);
      if (ours?.best) r.ratio = ours.best / bp.best!;
      const reduced = r.variants.find((v) => v.variant === r.bestReducedVariant);
      if (reduced?.best) r.ratioReduced = reduced.best / bp.best!;
    }
  }
  const loadEnd = loadavg();

  const vrows: string[][] = [];
  for (const r of reports) {
    for (const v of r.variants) {
      vrows.push([
        r.title,
        v.variant + (v.flopsShare ? ' ~' : '') + (v.variant === r.bestVariant ? ' *' : v.variant === r.bestReducedVariant ? ' +' : ''),
        v.status === 'ok' ? 'ok' : v.status === 'failed' ? 'FAILED' : 'ERROR',
        v.err === undefined ? '-' : v.err.toExponential(1),
        fmt(v.firstMs, 0),
        fmt(v.bestMs, 1),
        fmt(v.medianMs, 1),
        `${fmt(v.best)} / ${fmt(v.median)}`,
        r.unit,
        r.unit === 'GFLOP/s' ? `${fmt(v.pctCeilingBest, 0)}% / ${fmt(v.pctCeilingMedian, 0)}%` : '-',
      ]);
    }
  }
  console.log(`\nOurs, per variant, ${passes.length} pass(es) x ${opts.reps} reps (* = best full-precision variant, + = best reduced-precision one).`);
  console.log(`Ceiling (fma_peak): ${fmt(ceiling.best)} GFLOP/s best, ${fmt(ceiling.median)} median; % ceiling = best over best / median over median.`);
  console.log(table(['op', 'variant', 'check', 'error', 'first ms', 'best ms', 'median ms', 'rate best/median', 'unit', '% ceiling'], vrows));
  const shares = reports.flatMap((r) => r.variants.filter((v) => v.flopsShare && v.best).map((v) => `${r.title} ${v.variant}: ${fmt(v.best! * v.flopsShare!)} GFLOP/s = ${fmt((100 * v.best! * v.flopsShare!) / ceiling.best, 0)}% of the ceiling`));
  if (shares.length) {
    console.log(`~ = effective rate: the direct convolution's FLOPs over the variant's time; it does fewer multiply-adds (Winograd F(2x2): 4/9, F(4x4): 1/4). Arithmetic rates (best): ${shares.join('; ')}.`);
  }

  if (peers) {
    const prow: string[][] = [];
    for (const r of reports) {
      if (!r.peers) continue;
      const cell = (v?: string) => {
        const x = r.variants.find((y) => y.variant === v);
        return x ? `${v} ${fmt(x.best)} / ${fmt(x.median)}` : '-';
      };
      const peerCell = (name: string) => {
        const p = r.peers!.find((x) => x.peer === name);
        return p ? (p.best === null ? 'error' : `${fmt(p.best)} / ${fmt(p.median)}`) : '-';
      };
      prow.push([r.title, cell(r.bestVariant), ...WEBGPU_PEERS.map(peerCell), peerCell('ort-node-cpu'), r.ratio ? `${r.ratio.toFixed(2)}x` : '-', cell(r.bestReducedVariant), r.ratioReduced ? `${r.ratioReduced.toFixed(2)}x` : '-', r.unit]);
    }
    console.log('\nOurs against the peers, best / median. ratio = ours best / best WebGPU peer best (full precision; reduced precision apart)');
    console.log(table(['op', 'ours (f32)', ...WEBGPU_PEERS, 'ort-node-cpu (CPU EP)', 'ratio', 'ours (reduced precision)', 'ratio', 'unit'], prow));
  }
  const wall = (Date.now() - started) / 1000;
  console.log(`\nload average: start ${loadStart.map((l) => l.toFixed(2)).join(' ')}, after pass 1 ${loadOurs.map((l) => l.toFixed(2)).join(' ')}, end ${loadEnd.map((l) => l.toFixed(2)).join(' ')}; ${wall.toFixed(0)} s`);

  mkdirSync(dirname(opts.json), { recursive: true });
  writeFileSync(
    opts.json,
    JSON.stringify(
      {
        adapter: gpu.describe(),
        date: new Date().toISOString(),
        host: { cpus: cpus().length, cpu_model: cpus()[0]?.model, node: process.version, loadavg_start: loadStart, loadavg_after_pass1: loadOurs, loadavg_end: loadEnd },
        settings: {
          reps: opts.reps,
          passes: passes.length,
          quick: opts.quick,
          dawn_flags: opts.dawnFlags ?? process.env.DUALTOKEN_DAWN_FLAGS ?? null,
          timing: 'GPU timestamps per dispatch (Program.profile), summed over the op; variants taken in turns; best and median over all passes',
        },
        variants_known: VARIANTS,
        ceiling: { ...ceiling, kernel: 'shaders/fma_peak.wgsl' },
        ops: reports,
        peers_file: peers?.file,
        wall_s: wall,
      },
      null,
      1,
    ),
  );
  console.log(`results: ${opts.json}`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
