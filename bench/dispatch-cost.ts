// What a dispatch costs the CPU in Dawn, apart from the GPU's work: one program of N dispatches
// of a tiny kernel (add_scaled on 64 values, a chain so each reads the one before), encoded into
// one compute pass and submitted, timed per phase over many repetitions:
//   encode: setPipeline + setBindGroup + dispatchWorkgroups per dispatch, then pass end and finish;
//   submit: queue.submit of the finished command buffer;
//   wait:   onSubmittedWorkDone (the device's execution of N tiny dispatches, plus the round trip).
// The encode figure per dispatch, times a pass's dispatch count (the 384 encoder: 312 at B = 1,
// the decoder 496), is the CPU-side floor of a pass however fast the kernels get.
//
//   npm run bench:dispatch -- [--dispatches 50,300,1000] [--reps 20] [--json FILE]
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from '../src/core/arith.js';
import { KernelLibrary } from '../src/core/kernels.js';
import { Program } from '../src/core/program.js';
import { addScaled } from '../src/core/ops.js';
import { upload } from '../src/ops/case-kit.js';
import { createNodeGpu } from '../src/node/gpu.js';
import { writeFile } from '../src/node/io.js';
import { loadShaders, shaderDirs } from '../src/node/shaders.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'); // dist-bench/bench -> repo

function option(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  if (i + 1 >= argv.length) throw new Error(`${name} needs a value`);
  return argv[i + 1];
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const counts = option(argv, '--dispatches', '50,300,1000').split(',').map(Number);
  const reps = Number(option(argv, '--reps', '20'));
  const json = argv.includes('--json') ? option(argv, '--json', '') : undefined;
  const gpu = await createNodeGpu();
  const kernels = new KernelLibrary(gpu, loadShaders(shaderDirs(ROOT)));
  const { device } = gpu;
  const rows: Record<string, number | string>[] = [];
  console.log(`adapter: ${gpu.describe()}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('dispatches | encode us/dispatch (median) | submit us | wait ms (median) | reps');
  for (const n of counts) {
    const x = upload(gpu, [64], new Float32Array(64).fill(1), 'x');
    const prog = new Program(kernels, `chain of ${n}`);
    let t = x;
    for (let i = 0; i < n; i++) t = addScaled(prog, t, x, 0.5, `add ${i}`);
    t.pinned = true;
    await prog.run([t]); // compiles and plans
    const encode: number[] = [];
    const submit: number[] = [];
    const wait: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      const encoder = device.createCommandEncoder();
      prog.encode(encoder);
      const cb = encoder.finish();
      const t1 = performance.now();
      device.queue.submit([cb]);
      const t2 = performance.now();
      await device.queue.onSubmittedWorkDone();
      const t3 = performance.now();
      encode.push(((t1 - t0) * 1000) / n);
      submit.push((t2 - t1) * 1000);
      wait.push(t3 - t2);
    }
    const row = { dispatches: n, encodeUsPerDispatch: median(encode), encodeUsBest: Math.min(...encode), submitUs: median(submit), waitMs: median(wait), reps };
    rows.push(row);
    console.log(`${n} | ${row.encodeUsPerDispatch.toFixed(2)} (best ${row.encodeUsBest.toFixed(2)}) | ${row.submitUs.toFixed(0)} | ${row.waitMs.toFixed(2)} | ${reps}`);
    prog.destroy();
    x.buffer.destroy();
  }
  if (json) writeFile(json, JSON.stringify({ adapter: gpu.describe(), date: new Date().toISOString(), load: loadavg(), rows }, null, 1));
  gpu.destroy();
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
