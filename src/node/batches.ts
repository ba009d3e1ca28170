// Images through the model in batches, with bounded memory and each failure kept to the image
// that caused it. Images are decoded one batch ahead of the GPU (batch i+1 while batch i runs), so
// at most two batches of pixels are held, whatever the number of inputs. An image that cannot be
// read or decoded is reported and left out; a batch that fails on the GPU is retried image by
// image, so that one bad image does not take the others down. When the GPU device is lost, the
// model is reloaded once on a new device and the batch retried; a second loss ends the run.
import { DeviceLostError } from '../core/gpu.js';
import type { RgbImage } from '../core/image.js';

/** The run cannot go on: the device was lost again after a reload, or the model could not be reloaded. */
export class GaveUp extends Error {}

/**
 * Calls that survive one lost GPU device: on a DeviceLostError `reload` (a new model on a new
 * device) runs once and the call is made again; a second loss, in any later call too, gives up.
 */
export class DeviceLossRetry {
  private reloaded = false;
  constructor(private readonly reload: () => Promise<void>) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof DeviceLostError)) throw e;
        if (this.reloaded) throw new GaveUp(`${e.message} (again, after reloading the model on a new device): giving up`);
        this.reloaded = true;
        await this.reload().catch((r: Error) => {
          throw new GaveUp(`${e.message}; reloading the model on a new device failed: ${r.message}`);
        });
      }
    }
  }
}

export interface BatchJob<R> {
  paths: string[];
  /** Images per batch. */
  size: number;
  /** Reads and decodes one image; throws a one-line error naming the file. */
  read: (path: string) => RgbImage;
  /** Runs one batch on the current model. */
  run: (images: RgbImage[]) => Promise<R>;
  /** Takes a batch's result (keeps it, writes outputs); `indices` are its images' places in `paths`. */
  take: (indices: number[], result: R) => void | Promise<void>;
  retry: DeviceLossRetry;
  /** Reports one image that failed (a one-line message naming it). */
  fail: (message: string) => void;
  /** After each batch: the number of inputs dealt with so far. */
  progress?: (done: number) => void;
}

interface Decoded {
  indices: number[];
  images: RgbImage[];
}

/**
 * Runs `images` as one batch, or when that fails, one by one, so that one bad image does not take
 * the others down: `take` gets the positions (in `images`) of each result, `fail` each image that
 * failed alone. A lost device is retried by `retry`; giving up (GaveUp) ends the run.
 */
export async function batchOrEach<R>(
  images: RgbImage[],
  run: (images: RgbImage[]) => Promise<R>,
  retry: DeviceLossRetry,
  take: (positions: number[], result: R) => void | Promise<void>,
  fail: (position: number, error: Error) => void,
): Promise<void> {
  const tryRun = async (batch: RgbImage[]): Promise<{ result: R } | { error: Error }> => {
    try {
      return { result: await retry.run(() => run(batch)) };
    } catch (e) {
      if (e instanceof GaveUp) throw e;
      return { error: e instanceof Error ? e : new Error(String(e)) };
    }
  };
  if (images.length > 1) {
    const whole = await tryRun(images);
    if ('result' in whole) return take(images.map((_, i) => i), whole.result);
  }
  for (const [i, image] of images.entries()) {
    const one = await tryRun([image]);
    if ('result' in one) await take([i], one.result);
    else fail(i, one.error);
  }
}

/** Runs every image through the job; returns how many failed (each already reported). */
export async function runBatches<R>(job: BatchJob<R>): Promise<number> {
  let failures = 0;
  const fail = (message: string) => {
    failures++;
    job.fail(message);
  };
  const runBatch = (d: Decoded): Promise<void> =>
    batchOrEach(
      d.images,
      job.run,
      job.retry,
      (positions, result) => job.take(positions.map((p) => d.indices[p]), result),
      (p, error) => fail(`${job.paths[d.indices[p]]}: ${error.message}`),
    );

  /** Decodes the images start .. start + size - 1 that can be read. */
  const decode = (start: number): Decoded => {
    const d: Decoded = { indices: [], images: [] };
    for (let i = start; i < Math.min(start + job.size, job.paths.length); i++) {
      try {
        d.images.push(job.read(job.paths[i]));
        d.indices.push(i);
      } catch (e) {
        fail((e as Error).message);
      }
    }
    return d;
  };

  let next = decode(0);
  for (let start = 0; start < job.paths.length; start += job.size) {
    const running = runBatch(next);
    const after = start + job.size;
    // Decoded while the GPU works on the batch above (the decoder runs on this thread).
    next = decode(after);
    await running;
    job.progress?.(Math.min(after, job.paths.length));
  }
  return failures;
}
