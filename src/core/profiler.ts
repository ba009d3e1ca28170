// Timing a Program's dispatches (Program.profile): GPU timestamps, one compute pass per dispatch,
// where the adapter has timestamp-query; else wall clock around each dispatch submitted alone.
// And FastestRun, which lets runs and profiles sleep instead of polling the device.
import type { Gpu } from './gpu.js';
import { encodeDispatch, type Cost, type PlannedDispatch } from './dispatch.js';

/** One dispatch's measured time. */
export interface DispatchTiming {
  kernel: string;
  /** The pipeline: kernel, placeholders and override constants (KernelInfo.key). */
  pipeline: string;
  ms: number;
  cost: Cost;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The fastest steady wall time of a kind of submission (the first pays for the driver's shader
 * JIT and is not counted), used to wait without polling: Dawn's Node binding polls the device in
 * a busy loop while a promise of it is pending, which on a CPU adapter takes a core from the
 * driver. Sleeping through most of the fastest run seen so far before asking for the result
 * leaves that core to the GPU work, and never oversleeps a run that is as fast as the fastest one.
 */
export class FastestRun {
  private runs = 0;
  private ms = Infinity;
  record(ms: number): void {
    if (this.runs++ > 0) this.ms = Math.min(this.ms, ms);
  }
  async idleUntilNearlyDone(): Promise<void> {
    if (this.ms > 20 && this.ms < Infinity) await sleep(this.ms * 0.85);
  }
}

/** Each dispatch submitted alone, timed by the wall clock until the queue is done with it. */
export async function profileByWallClock(gpu: Gpu, label: string, planned: PlannedDispatch[]): Promise<DispatchTiming[]> {
  const timings: DispatchTiming[] = [];
  for (const p of planned) {
    const start = performance.now();
    await gpu.scoped(`${label}: profile ${p.kernel.info.name}`, () => {
      const encoder = gpu.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      encodeDispatch(pass, p);
      pass.end();
      gpu.device.queue.submit([encoder.finish()]);
    });
    await gpu.untilLost(`${label}: profile`, gpu.device.queue.onSubmittedWorkDone());
    timings.push({ kernel: p.kernel.info.name, pipeline: p.kernel.info.key, ms: performance.now() - start, cost: p.cost });
  }
  return timings;
}

/** One submission, each dispatch in a pass of its own with timestamps at its start and end. */
export async function profileByTimestamps(gpu: Gpu, label: string, planned: PlannedDispatch[], wait: FastestRun): Promise<DispatchTiming[]> {
  const { device } = gpu;
  const what = `${label}: profile`;
  const count = planned.length * 2;
  const querySet = device.createQuerySet({ type: 'timestamp', count });
  const resolve = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const start = performance.now();
    await gpu.scoped(what, () => {
      const encoder = device.createCommandEncoder({ label: `${label} profile` });
      planned.forEach((p, i) => {
        const pass = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
        encodeDispatch(pass, p);
        pass.end();
      });
      encoder.resolveQuerySet(querySet, 0, count, resolve, 0);
      encoder.copyBufferToBuffer(resolve, 0, read, 0, count * 8);
      device.queue.submit([encoder.finish()]);
    });
    await wait.idleUntilNearlyDone();
    await gpu.untilLost(what, read.mapAsync(GPUMapMode.READ));
    wait.record(performance.now() - start);
    const ns = new BigUint64Array(read.getMappedRange().slice(0));
    return planned.map((p, i) => ({ kernel: p.kernel.info.name, pipeline: p.kernel.info.key, ms: Number(ns[2 * i + 1] - ns[2 * i]) / 1e6, cost: p.cost }));
  } finally {
    read.destroy();
    resolve.destroy();
    querySet.destroy();
  }
}
