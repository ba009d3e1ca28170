#!/usr/bin/env node
// Peer benchmark: the same ops and shapes on TF.js-WebGPU, onnxruntime-web (WebGPU EP) and
// onnxruntime-node (WebGPU EP), all on the same Vulkan driver (Mesa lavapipe by default), plus
// onnxruntime-node's CPU EP as a CPU reference. Each peer runs in its own child process.
//
//   node bench/peers/run.mjs [--json bench/results/peers.json] [--peers a,b] [--ops id,id]
//        [--reps 5] [--min-reps 2] [--op-budget 10] [--batch 1] [--peer-timeout 300]
//        [--tfjs-matmul-type 1]
//
// Per op: one warm-up run (includes shader compilation; reported as first_ms), then timed
// repetitions until --reps are done, or --min-reps are done and --op-budget seconds are spent.
// --batch k > 1: each repetition is k back-to-back runs ending with one readback (GPU-resident
// data) where the peer's API allows it; the time per run is reported.
// Every peer's output is checked against a float64 CPU reference on sampled elements; a peer
// that fails the check gets best/median = null and an error.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OPS, compareSamples } from './ops.mjs';
import { DEFAULT_PEERS, PEER_NAMES, makePeer, loadedVulkanDrivers } from './peers.mjs';

const RESULT = '@@PEER_RESULT ';
const INFO = '@@PEER_INFO ';

function parseArgs(argv) {
  const o = {
    json: undefined,
    peers: DEFAULT_PEERS,
    ops: OPS.map((op) => op.id),
    reps: 5,
    minReps: 2,
    opBudget: 10,
    batch: 1,
    peerTimeout: 300,
    tfjsMatmulType: 1,
    child: undefined,
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--json') o.json = v();
    else if (a === '--peers') o.peers = v().split(',').filter(Boolean);
    else if (a === '--ops') o.ops = v().split(',').filter(Boolean);
    else if (a === '--reps') o.reps = Number(v());
    else if (a === '--min-reps') o.minReps = Number(v());
    else if (a === '--op-budget') o.opBudget = Number(v());
    else if (a === '--batch') o.batch = Number(v());
    else if (a === '--peer-timeout') o.peerTimeout = Number(v());
    else if (a === '--tfjs-matmul-type') o.tfjsMatmulType = Number(v());
    else if (a === '--child') o.child = v();
    else if (a === '--help' || a === '-h') {
      console.log(`usage: node bench/peers/run.mjs [--json FILE] [--peers ${PEER_NAMES.join(',')}]
  [--ops ${OPS.map((op) => op.id).join(',')}]
  [--reps N=5] [--min-reps N=2] [--op-budget SECONDS=10] [--batch K=1] [--peer-timeout SECONDS=300]
  [--tfjs-matmul-type T=1]   (TF.js WEBGPU_MATMUL_PROGRAM_TYPE: -1 auto, 0 reduce, 1 split-K, 2 small-output, 3 packed)`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const p of o.peers) if (!PEER_NAMES.includes(p)) throw new Error(`unknown peer ${p} (known: ${PEER_NAMES.join(', ')})`);
  for (const id of o.ops) if (!OPS.some((op) => op.id === id)) throw new Error(`unknown op ${id} (known: ${OPS.map((op) => op.id).join(', ')})`);
  if (!(o.reps >= 1 && o.minReps >= 1 && o.batch >= 1)) throw new Error('--reps, --min-reps and --batch must be >= 1');
  return o;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const rate = (work, ms) => work / (ms * 1e6); // GFLOP/s or GB/s
const round = (x, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? x : Number(x.toPrecision(d + 1)));

// ---------------------------------------------------------------------------------------------
// child: one peer, all ops; one line per result on stdout
// ---------------------------------------------------------------------------------------------
async function child(o) {
  const emit = (tag, obj) => process.stdout.write(tag + JSON.stringify(obj) + '\n');
  const peer = makePeer(o.child, o);
  let info;
  try {
    info = await peer.init();
  } catch (e) {
    const missing = /Cannot find (module|package)|ERR_MODULE_NOT_FOUND/.test(String(e?.message ?? e) + (e?.code ?? ''));
    const hint = missing ? ' (install the peers: cd bench/peers && npm install --ignore-scripts; `webgpu` comes from the project root: npm install)' : '';
    emit(INFO, { peer: peer.name, error: `init failed: ${e?.message ?? e}${hint}` });
    return;
  }
  emit(INFO, { peer: peer.name, ...info });
  for (const op of OPS.filter((x) => o.ops.includes(x.id))) {
    const base = {
      peer: peer.name,
      ...(peer.reference ? { reference: 'CPU, not WebGPU' } : {}),
      op: op.op,
      op_id: op.id,
      shape: op.shape,
      ...(op.flops ? { flops: op.flops } : { bytes: op.bytes }),
      unit: op.unit,
    };
    const work = op.flops ?? op.bytes;
    let h;
    try {
      const d = op.make();
      const samples = op.samples(d);
      const check = (at) => compareSamples(samples, at);
      const tp = performance.now();
      h = await peer.prepare(op, d);
      const prepare_ms = performance.now() - tp;
      const t0 = performance.now();
      const firstAt = await h.run();
      const first_ms = performance.now() - t0;
      const check_first = check(firstAt);
      const batch = o.batch > 1 && h.runBatch ? o.batch : 1;
      if (batch > 1) await h.runBatch(1); // compile/allocate the GPU-resident path outside the timing
      const times = [];
      let lastAt;
      const tStart = performance.now();
      while (times.length < o.reps && (times.length < o.minReps || performance.now() - tStart < o.opBudget * 1000)) {
        const t = performance.now();
        lastAt = batch > 1 ? await h.runBatch(batch) : await h.run();
        times.push((performance.now() - t) / batch);
      }
      const check_last = check(lastAt);
      const ok = check_first.ok && check_last.ok;
      const best_ms = Math.min(...times);
      const median_ms = median(times);
      emit(RESULT, {
        ...base,
        prepare_ms: round(prepare_ms),
        first_ms: round(first_ms),
        times_ms: times.map((t) => round(t)),
        best_ms: round(best_ms),
        median_ms: round(median_ms),
        best: ok ? round(rate(work, best_ms)) : null,
        median: ok ? round(rate(work, median_ms)) : null,
        reps: times.length,
        batch,
        timing: batch > 1 ? h.batchTiming : h.timing,
        notes: h.notes,
        check: { first: check_first, last: check_last },
        verified: ok,
        ...(ok ? {} : { error: `output differs from the CPU reference (rel_err first ${check_first.rel_err.toExponential(2)}, last ${check_last.rel_err.toExponential(2)})` }),
        loadavg: loadavg().map((x) => round(x, 2)),
      });
    } catch (e) {
      emit(RESULT, { ...base, error: String(e?.stack ?? e).split('\n').slice(0, 3).join(' | ') });
    } finally {
      try {
        await h?.dispose();
      } catch {}
    }
  }
  emit(INFO, { peer: peer.name, drivers_loaded: loadedVulkanDrivers() });
}

// ---------------------------------------------------------------------------------------------
// parent: one child per peer, table, JSON
// ---------------------------------------------------------------------------------------------
function runChild(peer, o, argv) {
  return new Promise((resolveP) => {
    const args = [fileURLToPath(import.meta.url), ...argv.slice(2).filter((_, i, a) => !['--peers', '--json'].includes(a[i]) && !['--peers', '--json'].includes(a[i - 1])), '--child', peer];
    const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
    env.VK_ICD_FILENAMES ??= '/usr/share/vulkan/icd.d/lvp_icd.json';
    const t0 = performance.now();
    const cp = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const results = [];
    const info = { peer };
    let buf = '';
    let errTail = '';
    let timedOut = false;
    cp.stdout.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith(RESULT)) {
          const r = JSON.parse(line.slice(RESULT.length));
          results.push(r);
          const msg = r.error
            ? `ERROR ${r.error}`
            : `first ${r.first_ms.toFixed(0)} ms, best ${r.best} / median ${r.median} ${r.unit} (${r.reps} reps)`;
          console.error(`  [${peer}] ${r.op}: ${msg}`);
        } else if (line.startsWith(INFO)) Object.assign(info, JSON.parse(line.slice(INFO.length)));
        else if (line.trim()) console.error(`  [${peer}] ${line}`);
      }
    });
    cp.stderr.on('data', (chunk) => {
      errTail = (errTail + chunk).slice(-4000);
      for (const line of String(chunk).split('\n')) {
        // Dawn's and ORT's routine start-up warnings
        if (!line.trim() || /artificially reduced|cpuid_info|Unknown CPU vendor/.test(line)) continue;
        console.error(`  [${peer}] ${line}`);
      }
    });
    const timer = setTimeout(() => {
      timedOut = true;
      cp.kill('SIGKILL');
    }, o.peerTimeout * 1000);
    cp.on('close', (code, signal) => {
      clearTimeout(timer);
      const wall_s = round((performance.now() - t0) / 1000);
      if (timedOut || code !== 0 || signal) {
        const why = timedOut ? `timed out after ${o.peerTimeout} s` : `exited with ${signal ?? `code ${code}`}`;
        info.error ??= why;
        for (const id of o.ops.filter((id) => !results.some((r) => r.op_id === id))) {
          const op = OPS.find((x) => x.id === id);
          results.push({ peer, op: op.op, op_id: id, shape: op.shape, unit: op.unit, error: `not measured: peer process ${why}; stderr tail: ${errTail.trim().split('\n').slice(-3).join(' | ')}` });
        }
      } else if (info.error) {
        for (const id of o.ops.filter((id) => !results.some((r) => r.op_id === id))) {
          const op = OPS.find((x) => x.id === id);
          results.push({ peer, op: op.op, op_id: id, shape: op.shape, unit: op.unit, error: info.error });
        }
      }
      resolveP({ info: { ...info, wall_s }, results });
    });
  });
}

function table(results) {
  const rows = [['peer', 'op', 'first ms', 'best', 'median', 'unit', 'reps', 'check']];
  for (const r of results)
    rows.push([
      r.peer,
      r.op,
      r.first_ms !== undefined ? r.first_ms.toFixed(0) : '-',
      r.best ?? '-',
      r.median ?? '-',
      r.unit,
      r.reps ?? '-',
      r.error ? `ERROR: ${r.error.slice(0, 60)}` : `ok (rel ${r.check.last.rel_err.toExponential(1)})`,
    ].map(String));
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r, i) => r.map((s, c) => s.padEnd(w[c])).join('  ') + (i === 0 ? '\n' + w.map((n) => '-'.repeat(n)).join('  ') : '')).join('\n');
}

async function parent(o) {
  const started = new Date();
  const load_start = loadavg().map((x) => round(x, 2));
  const t0 = performance.now();
  const peers = [];
  const results = [];
  for (const p of o.peers) {
    console.error(`peer ${p} ...`);
    const r = await runChild(p, o, process.argv);
    peers.push(r.info);
    results.push(...r.results);
  }
  // results in op order, then peer order
  const opIndex = (id) => OPS.findIndex((x) => x.id === id);
  results.sort((a, b) => opIndex(a.op_id) - opIndex(b.op_id) || o.peers.indexOf(a.peer) - o.peers.indexOf(b.peer));
  const adapterInfo = peers.find((p) => p.adapter?.description)?.adapter;
  const out = {
    adapter: adapterInfo ? [adapterInfo.vendor, adapterInfo.architecture, adapterInfo.description].filter(Boolean).join(' / ') : process.env.VK_ICD_FILENAMES ?? 'lavapipe',
    vk_icd_filenames: process.env.VK_ICD_FILENAMES ?? '/usr/share/vulkan/icd.d/lvp_icd.json',
    date: started.toISOString(),
    host: { cpus: cpus().length, cpu_model: cpus()[0]?.model, node: process.version, loadavg_start: load_start, loadavg_end: loadavg().map((x) => round(x, 2)) },
    settings: { reps: o.reps, min_reps: o.minReps, op_budget_s: o.opBudget, batch: o.batch, peer_timeout_s: o.peerTimeout, tfjs_matmul_type: o.tfjsMatmulType },
    wall_s: round((performance.now() - t0) / 1000),
    peers,
    results,
  };
  console.log(table(results));
  console.log(`\nadapter: ${out.adapter}; load average ${load_start.join(' ')} -> ${out.host.loadavg_end.join(' ')}; ${out.wall_s} s`);
  for (const p of peers) console.log(`${p.peer}: ${p.version ?? ''}${p.error ? ` ERROR ${p.error}` : ''}; drivers loaded: ${(p.drivers_loaded ?? []).join(', ') || '-'}`);
  if (o.json) {
    const path = resolve(o.json);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify(out, null, 1) + '\n');
    console.log(`wrote ${path}`);
  }
}

const o = parseArgs(process.argv);
if (o.child) {
  child(o)
    .catch((e) => {
      process.stdout.write(INFO + JSON.stringify({ peer: o.child, error: String(e?.stack ?? e) }) + '\n');
    })
    .finally(() => process.exit(0)); // dawn.node can keep Node alive
} else {
  parent(o).then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
