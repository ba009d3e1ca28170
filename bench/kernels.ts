// The kernel lab: every variant of each hot op at the released model's sizes, side by side, then
// the peers (TF.js-WebGPU, onnxruntime-web, onnxruntime-node) on the same shapes in the same run.
//
//   npm run bench -- [--quick] [--ops id,id] [--reps N] [--kernel-time | --no-kernel-time] [--no-peers | --peers-json FILE]
//                    [--json bench/results/kernels.json] [--dawn-flags '...']
//
// Our pass, the peers (bench/peers/run.mjs in a child process, --reps N passed on as their --reps
// and --min-reps), our second pass; ours are over both passes, so that a change of load on a
// shared machine while the peers run shows in our numbers too. With --reps 5: 27 min on 2 cores
// under load 6-10 (2026-12-04).
//
// Per op and variant: the first run (pipeline compilation and weight packing included) is
// reported apart; its output is checked against a float64 CPU reference on sampled elements
// (error over the largest reference value must stay under the variant's tolerance, 1e-4 for f32,
// or the variant is FAILED and not timed). Then steady runs, taken in turns across the variants,
// timed the way the peers are (bench/peers/run.mjs): wall clock (performance.now) around one run
// of the op that ends when its output is back in a JS ArrayBuffer: encode the recorded program and
// a copy of the output into a staging buffer, submit, mapAsync, getMappedRange().slice(0)
// (Program.run with wait 'spin': without its sleep). Waiting is the same as the
// Dawn-binding peers': mapAsync at once, Dawn's Node binding polling (a busy core) until the
// map resolves. The last timed output is checked again. The inputs and weights stay on the GPU, as
// TF.js's do; the ONNX peers' run also uploads their activation inputs (bench/README.md).
// Extra columns, not used in the ratio: the GPU-timestamp kernel time of each variant
// (Program.profile, summed over the op's dispatches): for the default variant, for every variant
// with --kernel-time (another run each: twice the time), none with --no-kernel-time; and for the
// default variant the wall clock of Program.run, the engine's own run (sleeps through ~85% of the
// fastest run seen before mapping: FastestRun in src/core/profiler.ts).
// ratio = our default variant's median rate / the best WebGPU peer's median rate (both wall clock);
// best/best for reference. The default variant is variantsOf(kernels).choose(op, shape class).
// The adapter's arithmetic ceiling comes from shaders/fma_peak.wgsl (GPU timestamps).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from '../src/core/arith.js';
import { KernelLibrary } from '../src/core/kernels.js';
import { Program } from '../src/core/program.js';
import type { Tensor } from '../src/core/tensor.js';
import { firstRun, rate, timeProgram, variantTolerance } from '../src/ops/autotune.js';
import { VARIANTS, isCpuAdapter, isFullPrecision, shapeClass, variantsForClass, variantsOf } from '../src/ops/choice.js';
import { OP_CASES } from '../src/ops/index.js';
import type { OpCase } from '../src/ops/types.js';
import { createNodeGpu } from '../src/node/gpu.js';
import { SHADER_DIRS, loadShaders, shaderDirs } from '../src/node/shaders.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'); // dist-bench/bench -> repo
const WEBGPU_PEERS = ['tfjs-webgpu', 'ort-web', 'ort-node'];

interface Options {
  quick: boolean;
  ops?: string[];
  reps: number;
  peers: boolean;
  peersJson?: string;
  /** GPU-timestamp kernel time: 'default' (the default variant only), 'all' or 'none'. */
  kernelTime: 'default' | 'all' | 'none';
  json: string;
  dawnFlags?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, reps: 3, peers: true, kernelTime: 'default', json: join(ROOT, 'bench', 'results', 'kernels.json') };
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
    else if (a === '--kernel-time') o.kernelTime = 'all';
    else if (a === '--no-kernel-time') o.kernelTime = 'none';
    else if (a === '--peers-json') o.peersJson = v();
    else if (a === '--json') o.json = resolve(v());
    else if (a === '--dawn-flags') o.dawnFlags = v();
    else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench -- [--quick] [--ops ${CASES.map((c) => c.id).join(',')}]
  [--reps N=3 per pass (2 with --quick); the peers get N too] [--kernel-time (GPU timestamps for every variant; default: the default variant only) | --no-kernel-time]
  [--no-peers | --peers-json FILE] [--json FILE] [--dawn-flags 'enable-dawn-features=...']
Timing: wall clock around one run of the op with its output read back to the CPU, ours and the
peers' alike (busy wait in Dawn's Node binding on both sides); best and median; the ratio is our
default variant's median over the best WebGPU peer's median.`);
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

// The op modules' kernel-lab cases (src/ops/<op>/cases.ts): the released model's sizes.
const CASES: BenchCase[] = Object.values(OP_CASES).flatMap((cases) => cases.lab());

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
    byAcc.push({ acc: p.acc, best: p.flops / Math.min(...p.times) / 1e6, median: p.flops / median(p.times) / 1e6 });
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
  best_ms?: number;
  median_ms?: number;
  reps?: number;
  first_ms?: number;
  timing?: string;
  error?: string;
}

async function runPeers(opts: Options, ops: string[]): Promise<{ file: string; data: { results: PeerResult[]; [k: string]: unknown } }> {
  if (opts.peersJson) return { file: opts.peersJson, data: JSON.parse(readFileSync(opts.peersJson, 'utf8')) };
  const file = join(tmpdir(), `dualtoken-peers-${process.pid}.json`);
  const args = [join(ROOT, 'bench', 'peers', 'run.mjs'), '--json', file, '--ops', ops.join(',')];
  // Every peer op gets the same number of timed runs as each of our passes (no time budget cut).
  if (opts.quick) args.push('--reps', '3', '--op-budget', '6');
  else args.push('--reps', String(opts.reps), '--min-reps', String(opts.reps));
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

// ---------------------------------------------------------------- timing ours like the peers

interface Measured {
  variant: string;
  status: 'ok' | 'failed' | 'error';
  /** Sampled error of the first run's output (relative to the largest reference value). */
  err?: number;
  /** The same for the last timed run's output. */
  errLast?: number;
  samples?: number;
  tolerance: number;
  firstMs?: number;
  /** Wall clock per steady run, output read back, busy wait (Program.run, wait 'spin'): the peers' method. */
  timesMs: number[];
  /** GPU-timestamp time per steady run (Program.profile, summed over the dispatches). */
  kernelTimesMs: number[];
  /** Default variant only: wall clock of Program.run([out]), the engine's own waiting. */
  ownWaitTimesMs?: number[];
  error?: string;
}

/**
 * measureVariants (src/core/autotune.ts) with the peers' timing: first run (compiling) and check,
 * then `reps` rounds, each variant in turn: Program.run with wait 'spin' timed (its output kept for the last check),
 * then Program.profile (kernel time), then for the default variant a timed Program.run.
 */
async function measure(kernels: KernelLibrary, c: OpCase, variants: string[], def: string, reps: number, kernelTime: Options['kernelTime'], log: (s: string) => void): Promise<Measured[]> {
  const prepared = c.prepare(kernels.gpu);
  const live: { r: Measured; prog: Program; out: Tensor; last?: ArrayBuffer }[] = [];
  const results: Measured[] = [];
  try {
    for (const variant of variants) {
      const tolerance = variantTolerance(c, variant);
      const r: Measured = { variant, status: 'ok', tolerance, timesMs: [], kernelTimesMs: [], ...(variant === def ? { ownWaitTimesMs: [] } : {}) };
      results.push(r);
      const ran = await firstRun(kernels, c, prepared, r, `${c.title} [${variant}]${variant === def ? ' (default)' : ''}`, log);
      if (ran) live.push({ r, ...ran });
    }
    for (let rep = 0; rep < reps; rep++) {
      for (const l of live) {
        const t = performance.now();
        [l.last] = await l.prog.run([l.out], undefined, 'spin');
        l.r.timesMs.push(performance.now() - t);
        if (kernelTime === 'all' || (kernelTime === 'default' && l.r.ownWaitTimesMs)) l.r.kernelTimesMs.push(await timeProgram(l.prog));
        if (l.r.ownWaitTimesMs) {
          const t2 = performance.now();
          await l.prog.run([l.out]);
          l.r.ownWaitTimesMs.push(performance.now() - t2);
        }
      }
    }
    for (const l of live) {
      if (!l.last) continue;
      const errLast = prepared.check(l.last).err;
      l.r.errLast = errLast;
      if (!(errLast <= l.r.tolerance)) {
        l.r.status = 'failed';
        l.r.error = `last timed output: error ${errLast.toExponential(2)} > ${l.r.tolerance}`;
      }
    }
  } finally {
    for (const { prog } of live) prog.destroy();
    prepared.destroy();
  }
  return results;
}

// ---------------------------------------------------------------- report

const fmt = (v: number | undefined | null, d = 2) => (v === undefined || v === null || !Number.isFinite(v) ? '-' : v.toFixed(d));

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i < 2 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

interface Stats {
  n: number;
  bestMs?: number;
  medianMs?: number;
  /** Rates (GFLOP/s or GB/s) of bestMs / medianMs. */
  best?: number;
  median?: number;
}

interface VariantReport {
  variant: string;
  isDefault: boolean;
  status: Measured['status'];
  err?: number;
  errLast?: number;
  samples?: number;
  tolerance: number;
  firstMs?: number;
  error?: string;
  /** Wall clock, output read back, busy wait: the peers' method (used in the ratio). */
  wall: Stats & { timesMs: number[] };
  /** GPU timestamps (Program.profile): kernel time only, not comparable with the peers'. */
  kernel: Stats & { timesMs: number[]; pctCeilingBest?: number; pctCeilingMedian?: number };
  /** Default variant: wall clock of Program.run (the engine's own waiting: sleep, then poll). */
  ownWait?: Stats & { timesMs: number[] };
  /** Share of the direct FLOPs the variant does (Winograd 4/9, 1/4): its rates are then effective rates. */
  flopsShare?: number;
}

interface PeerReport {
  peer: string;
  n: number | null;
  bestMs: number | null;
  medianMs: number | null;
  best: number | null;
  median: number | null;
  error?: string;
}

interface OpReport {
  id: string;
  title: string;
  op: string;
  unit: string;
  work: number;
  defaultVariant: string;
  variants: VariantReport[];
  /** Fastest (by wall-clock median) variant held to the f32 bound, and reduced-precision one. */
  fastestVariant?: string;
  fastestReducedVariant?: string;
  peers?: PeerReport[];
  /** The WebGPU peer with the highest median rate. */
  bestPeer?: { peer: string; best: number; median: number };
  /** Our default variant's median rate / the best peer's median rate (both wall clock, readback included). */
  ratio?: number;
  /** Our default variant's best rate / the highest best rate of any WebGPU peer. */
  ratioBestOverBest?: number;
  /** Our default variant with the engine's own waiting (Program.run), median / the best peer's median. */
  ratioOwnWait?: number;
}

/** One pass over the ops: the FMA ceiling, then every variant of every op. */
async function pass(kernels: KernelLibrary, cases: BenchCase[], opts: Options, label: string): Promise<{ ceiling: Ceiling; results: Map<string, Measured[]> }> {
  const gpu = kernels.gpu;
  const log = (s: string) => console.log(`  ${s}`);
  console.log(`\n== ${label}: load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const ceiling = await fmaCeiling(kernels, opts.reps);
  console.log(`FMA-only ceiling: ${fmt(ceiling.best)} GFLOP/s best, ${fmt(ceiling.median)} median (${ceiling.byAcc.map((b) => `ACC=${b.acc}: ${fmt(b.best)}/${fmt(b.median)}`).join(', ')})`);
  const results = new Map<string, Measured[]>();
  for (const bc of cases) {
    const c = bc.make();
    const cls = shapeClass(c.op, c.dims);
    const variants = variantsForClass(gpu, c.op, cls); // a variant that delegates this class would time its delegate again
    const def = variantsOf(kernels).choose(c.op, c.dims, () => c.title);
    console.log(`${c.title}: ${variants.join(', ')} (default ${def})`);
    results.set(bc.id, await measure(kernels, c, variants, def, opts.reps, opts.kernelTime, log));
  }
  return { ceiling, results };
}

function stats(work: number, timesMs: number[]): Stats & { timesMs: number[] } {
  if (!timesMs.length) return { n: 0, timesMs };
  const bestMs = Math.min(...timesMs);
  const medianMs = median(timesMs);
  return { n: timesMs.length, bestMs, medianMs, best: rate(work, bestMs), median: rate(work, medianMs), timesMs };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const loadStart = loadavg();
  const gpu = await createNodeGpu(opts.dawnFlags ? { dawnFlags: opts.dawnFlags.split(' ') } : {});
  const kernels = new KernelLibrary(gpu, loadShaders(process.env.DUALTOKEN_SHADERS ? SHADER_DIRS : shaderDirs(ROOT))); // the env: bundled in .gpu/ (bench/gpu-pack.sh)
  console.log(`adapter: ${gpu.describe()}${isCpuAdapter(gpu) ? ' (CPU adapter)' : ''}; features: ${[...gpu.device.features].join(', ')}`);
  console.log(`default variants: ${JSON.stringify(variantsOf(kernels).describe())}`);
  console.log(`reps ${opts.reps} per pass; dawn flags: ${opts.dawnFlags ?? process.env.DUALTOKEN_DAWN_FLAGS ?? 'none'}`);
  const cases = CASES.filter((c) => !opts.ops || opts.ops.includes(c.id));
  // The op families bench/peers/ops.mjs builds for the peers (no 1x1 conv, quantizer search, layernorm or row softmax there).
  const peerOps = cases.map((c) => c.id).filter((id) => /^(linear|attention|conv3x3|groupnorm)_/.test(id));
  const withPeers = (opts.peers || !!opts.peersJson) && peerOps.length > 0;

  // Ours before and after the peers (when they run), so that a change of load on a shared
  // machine during the peers' minutes shows up in our numbers too; best and median over both.
  const passes = [await pass(kernels, cases, opts, 'ours, pass 1')];
  const loadOurs = loadavg();
  let peers: Awaited<ReturnType<typeof runPeers>> | undefined;
  let loadAfterPeers: number[] | undefined;
  if (withPeers) {
    try {
      peers = await runPeers(opts, peerOps);
    } catch (e) {
      console.log(`peers: ${(e as Error).message}`);
    }
    loadAfterPeers = loadavg();
    if (!opts.peersJson) passes.push(await pass(kernels, cases, opts, 'ours, pass 2'));
  }
  const adapter = gpu.describe();
  gpu.destroy();
  const ceiling = {
    best: Math.max(...passes.map((p) => p.ceiling.best)),
    median: median(passes.map((p) => p.ceiling.median)),
    passes: passes.map((p) => p.ceiling),
  };

  const reports: OpReport[] = cases.map((bc) => {
    const c = bc.make();
    const first = passes[0].results.get(bc.id)!;
    const variants: VariantReport[] = first.map((v0) => {
      const all = passes.map((p) => p.results.get(bc.id)!.find((v) => v.variant === v0.variant)!);
      const failed = all.find((v) => v.status !== 'ok');
      const ok = !failed;
      const v: VariantReport = {
        variant: v0.variant,
        isDefault: !!v0.ownWaitTimesMs,
        status: failed?.status ?? 'ok',
        err: Math.max(...all.map((x) => x.err ?? 0)),
        errLast: Math.max(...all.map((x) => x.errLast ?? 0)),
        samples: v0.samples,
        tolerance: v0.tolerance,
        firstMs: v0.firstMs,
        error: failed?.error,
        wall: stats(c.work, ok ? all.flatMap((x) => x.timesMs) : []),
        kernel: stats(c.work, ok ? all.flatMap((x) => x.kernelTimesMs) : []),
        ...(v0.ownWaitTimesMs ? { ownWait: stats(c.work, ok ? all.flatMap((x) => x.ownWaitTimesMs ?? []) : []) } : {}),
      };
      const share = VARIANTS[c.op].find((i) => i.name === v.variant)?.flopsShare?.[shapeClass(c.op, c.dims)];
      if (share) v.flopsShare = share;
      if (c.unit === 'GFLOP/s' && v.kernel.n) {
        v.kernel.pctCeilingBest = (100 * v.kernel.best!) / ceiling.best;
        v.kernel.pctCeilingMedian = (100 * v.kernel.median!) / ceiling.median;
      }
      return v;
    });
    const def = variants.find((v) => v.isDefault)?.variant ?? '-';
    const r: OpReport = { id: bc.id, title: c.title, op: c.op, unit: c.unit, work: c.work, defaultVariant: def, variants };
    const pick = (vs: VariantReport[]) => (vs.length ? vs.reduce((a, b) => (b.wall.median! > a.wall.median! ? b : a)).variant : undefined);
    const timed = variants.filter((v) => v.wall.n > 0);
    r.fastestVariant = pick(timed.filter((v) => isFullPrecision(c.op, v.variant)));
    r.fastestReducedVariant = pick(timed.filter((v) => !isFullPrecision(c.op, v.variant)));
    return r;
  });

  if (peers) {
    for (const r of reports) {
      const rows = peers.data.results.filter((p) => p.op_id === r.id);
      if (!rows.length) continue;
      r.peers = rows.map((p) => ({ peer: p.peer, n: p.reps ?? null, bestMs: p.best_ms ?? null, medianMs: p.median_ms ?? null, best: p.best, median: p.median, error: p.error }));
      const web = rows.filter((p) => WEBGPU_PEERS.includes(p.peer) && p.median !== null && p.best !== null);
      if (!web.length) continue;
      const bp = web.reduce((a, b) => (b.median! > a.median! ? b : a));
      r.bestPeer = { peer: bp.peer, best: bp.best!, median: bp.median! };
      const peerBestBest = Math.max(...web.map((p) => p.best!));
      const ours = r.variants.find((v) => v.isDefault);
      if (ours?.wall.median) r.ratio = ours.wall.median / bp.median!;
      if (ours?.wall.best) r.ratioBestOverBest = ours.wall.best / peerBestBest;
      if (ours?.ownWait?.median) r.ratioOwnWait = ours.ownWait.median / bp.median!;
    }
  }
  const loadEnd = loadavg();

  const vrows: string[][] = [];
  for (const r of reports) {
    for (const v of r.variants) {
      vrows.push([
        r.title,
        v.variant + (v.flopsShare ? ' ~' : '') + (v.isDefault ? ' (default)' : '') + (v.variant === r.fastestVariant ? ' *' : v.variant === r.fastestReducedVariant ? ' +' : ''),
        v.status === 'ok' ? 'ok' : v.status === 'failed' ? 'FAILED' : 'ERROR',
        v.err === undefined ? '-' : `${v.err.toExponential(1)}/${fmt(v.errLast, 1) === '-' ? '-' : v.errLast!.toExponential(1)}`,
        fmt(v.firstMs, 0),
        String(v.wall.n),
        `${fmt(v.wall.bestMs, 1)} / ${fmt(v.wall.medianMs, 1)}`,
        `${fmt(v.wall.best)} / ${fmt(v.wall.median)}`,
        `${fmt(v.kernel.bestMs, 1)} / ${fmt(v.kernel.medianMs, 1)}`,
        `${fmt(v.kernel.best)} / ${fmt(v.kernel.median)}`,
        r.unit === 'GFLOP/s' && v.kernel.n ? `${fmt(v.kernel.pctCeilingBest, 0)}% / ${fmt(v.kernel.pctCeilingMedian, 0)}%` : '-',
        r.unit,
      ]);
    }
  }
  console.log(`\nOurs, per variant, ${passes.length} pass(es) x ${opts.reps} reps. wall = wall clock around one run with the output read back (busy wait, the peers' method); kernel = GPU timestamps (Program.profile), not comparable with the peers.`);
  console.log(`(default) = the adapter's default variant; * = fastest full-precision variant by wall median, + = fastest reduced-precision one. error = first run / last timed run.`);
  console.log(`Ceiling (fma_peak, GPU timestamps): ${fmt(ceiling.best)} GFLOP/s best, ${fmt(ceiling.median)} median; % ceiling = kernel best over best / median over median.`);
  console.log(table(['op', 'variant', 'check', 'error', 'first ms', 'n', 'wall ms best/med', 'wall rate best/med', 'kernel ms best/med', 'kernel rate best/med', '% ceiling', 'unit'], vrows));
  const shares = reports.flatMap((r) => r.variants.filter((v) => v.flopsShare && v.kernel.best).map((v) => `${r.title} ${v.variant}: ${fmt(v.kernel.best! * v.flopsShare!)} GFLOP/s = ${fmt((100 * v.kernel.best! * v.flopsShare!) / ceiling.best, 0)}% of the ceiling`));
  if (shares.length) {
    console.log(`~ = effective rate: the direct convolution's FLOPs over the variant's time; it does fewer multiply-adds (Winograd F(2x2): 4/9, F(4x4): 1/4). Arithmetic rates (kernel best): ${shares.join('; ')}.`);
  }
  const own = reports.flatMap((r) => r.variants.filter((v) => v.ownWait?.n).map((v) => `${r.title} ${v.variant}: n ${v.ownWait!.n}, ${fmt(v.ownWait!.bestMs, 1)} / ${fmt(v.ownWait!.medianMs, 1)} ms`));
  if (own.length) console.log(`Default variants run by Program.run (the engine's own waiting: sleep ~85% of the fastest run, then poll), wall best / median: ${own.join('; ')}.`);

  if (peers) {
    const prow: string[][] = [];
    for (const r of reports) {
      if (!r.peers) continue;
      const ours = r.variants.find((v) => v.isDefault);
      const peerCell = (name: string) => {
        const p = r.peers!.find((x) => x.peer === name);
        return p ? (p.median === null ? 'error' : `n ${p.n} ${fmt(p.best)} / ${fmt(p.median)}`) : '-';
      };
      prow.push([
        r.title,
        ours ? `${ours.variant} n ${ours.wall.n} ${fmt(ours.wall.best)} / ${fmt(ours.wall.median)}` : '-',
        ...WEBGPU_PEERS.map(peerCell),
        peerCell('ort-node-cpu'),
        r.ratio ? `${r.ratio.toFixed(2)}x` : '-',
        r.ratioBestOverBest ? `${r.ratioBestOverBest.toFixed(2)}x` : '-',
        r.ratioOwnWait ? `${r.ratioOwnWait.toFixed(2)}x` : '-',
        r.unit,
      ]);
    }
    console.log('\nOurs (default variant) against the peers: n runs, rate best / median, all wall clock around one run with the output read back.');
    console.log('ratio = our default median / the best WebGPU peer median; best/best = our default best / the highest WebGPU peer best; own wait = ratio with our default run by Program.run (sleeps, then polls).');
    console.log(table(['op', 'ours (default)', ...WEBGPU_PEERS, 'ort-node-cpu (CPU EP)', 'ratio med/med', 'best/best', 'own wait med/med', 'unit'], prow));
  }
  const wall = (Date.now() - started) / 1000;
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  console.log(`\nload average: start ${la(loadStart)}, after pass 1 ${la(loadOurs)}${loadAfterPeers ? `, after the peers ${la(loadAfterPeers)}` : ''}, end ${la(loadEnd)}; ${wall.toFixed(0)} s`);

  mkdirSync(dirname(opts.json), { recursive: true });
  writeFileSync(
    opts.json,
    JSON.stringify(
      {
        adapter,
        date: new Date().toISOString(),
        host: { cpus: cpus().length, cpu_model: cpus()[0]?.model, node: process.version, loadavg_start: loadStart, loadavg_after_pass1: loadOurs, loadavg_after_peers: loadAfterPeers, loadavg_end: loadEnd },
        settings: {
          reps: opts.reps,
          passes: passes.length,
          quick: opts.quick,
          dawn_flags: opts.dawnFlags ?? process.env.DUALTOKEN_DAWN_FLAGS ?? null,
          timing: {
            wall:
              "ours: wall clock (performance.now) around one run of the op's recorded program with its output copied to a staging buffer, mapAsync'd and copied into an ArrayBuffer (Program.run with wait 'spin': mapAsync right after submit, Dawn's Node binding polls until it resolves); inputs and weights GPU-resident. Peers: wall clock around their run() (bench/peers/run.mjs), which ends with the output on the CPU (TF.js: GPU-resident inputs; ONNX peers: activations uploaded in each run). Variants taken in turns; best and median over all passes.",
            kernel: `GPU timestamps per dispatch (Program.profile), summed over the op; an extra column, not in the ratio; timed for: ${opts.kernelTime === 'all' ? 'every variant' : opts.kernelTime === 'default' ? 'the default variant only' : 'none'}`,
            own_wait: "default variant only: wall clock of Program.run([out]) (sleeps ~85% of the fastest run seen, then polls); an extra column",
            ratio: "our default variant's wall median rate / the best WebGPU peer's wall median rate; ratio_best_over_best: our default's best rate / the highest best rate of any WebGPU peer",
          },
        },
        variants_known: VARIANTS,
        ceiling: { ...ceiling, kernel: 'shaders/fma_peak.wgsl', timing: 'GPU timestamps' },
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
