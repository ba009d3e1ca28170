// The one place that owns a GPUDevice: the limits and features we asked for, and errors.
// Every WebGPU validation / out-of-memory / internal error becomes a thrown Error that names
// what was being done (the kernel); nothing is only logged. Error scopes bracket synchronous
// work only (scoped): a scope left open across an await would catch the errors of whatever else
// ran meanwhile (pipelines compiling in parallel, overlapping runs) under the wrong name. A lost
// device (DeviceLostError) fails the call in flight and every later one at once.

/** The device is gone (lost, or destroyed): nothing on it can run again; a new device is needed. */
export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Optional features used when the adapter has them. */
export const WANTED_FEATURES = ['shader-f16', 'timestamp-query', 'subgroups'] as const;

/** Limits requested at the adapter's own maximum instead of WebGPU's defaults. */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

export class Gpu {
  private lostReason: string | undefined;
  private uncaptured: string | undefined;
  /** Rejects with a DeviceLostError once the device is lost or destroyed (see untilLost). */
  private readonly lostSignal: Promise<never>;

  private constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterDescription,
  ) {
    this.lostSignal = device.lost.then((info) => {
      this.lostReason = info.reason === 'destroyed' ? 'the GPU device was destroyed' : `GPU device lost: ${info.message || info.reason}`;
      throw new DeviceLostError(this.lostReason);
    });
    this.lostSignal.catch(() => {}); // observed through check() and untilLost()
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.uncaptured ??= `${e.constructor.name}: ${e.message}`;
    });
  }

  /** Requests a device with the adapter's real limits and every wanted feature it has. */
  static async fromAdapter(adapter: GPUAdapter): Promise<Gpu> {
    const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
    const requiredLimits: Record<string, number> = {};
    for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'dualtoken' });
    const info = adapter.info;
    return new Gpu(device, {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    });
  }

  /** Wraps a device the caller already has (e.g. a page that shares its device). */
  static fromDevice(device: GPUDevice, adapter?: Partial<AdapterDescription>): Gpu {
    return new Gpu(device, { vendor: '', architecture: '', device: '', description: '', isFallbackAdapter: false, ...adapter });
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  has(feature: (typeof WANTED_FEATURES)[number]): boolean {
    return this.device.features.has(feature);
  }

  /** "llvmpipe: Mesa 25 ... (mesa software)": what benchmarks and errors print. */
  describe(): string {
    const a = this.adapter;
    const name = a.description || a.device || 'unknown adapter';
    const parts = [a.vendor, a.architecture].filter(Boolean).join(' ');
    return parts ? `${name} (${parts})` : name;
  }

  /** Throws if the device was lost (a DeviceLostError) or reported an error outside any scope. */
  check(what: string): void {
    if (this.lostReason) throw new DeviceLostError(`${what}: ${this.lostReason}`);
    if (this.uncaptured) {
      const msg = this.uncaptured;
      this.uncaptured = undefined;
      throw new Error(`${what}: WebGPU error: ${msg}`);
    }
  }

  /**
   * `p`, or a DeviceLostError naming `what` as soon as the device is lost: a wait on a lost
   * device never hangs, and its own failure (Dawn rejects a pending mapAsync with an AbortError)
   * is reported as the loss it is.
   */
  async untilLost<T>(what: string, p: Promise<T>): Promise<T> {
    try {
      return await Promise.race([p, this.lostSignal]);
    } catch (e) {
      // An AbortError can come a moment before the device's loss is reported.
      if ((e as Error).name === 'AbortError') await Promise.race([this.lostSignal, sleep(100)]).catch(() => {});
      if (this.lostReason) throw new DeviceLostError(`${what}: ${this.lostReason}`);
      throw e;
    }
  }

  /**
   * Runs the synchronous WebGPU calls of `fn` inside validation + out-of-memory + internal
   * error scopes, pushed and popped around it with no await between, so that no other work's
   * errors can land in them. Resolves to fn's result once the scopes are read; rejects naming
   * `what` if one caught an error (or if fn threw).
   */
  async scoped<T>(what: string, fn: () => T): Promise<T> {
    return this.bracket(what, fn).checked;
  }

  /**
   * scoped() for callers that need fn's result at once (work recorded and submitted while a
   * program is being recorded): `result` now, `checked` once the scopes are read. Throws at once
   * if the device is lost or fn throws.
   */
  bracket<T>(what: string, fn: () => T): { result: T; checked: Promise<T> } {
    this.check(what);
    const d = this.device;
    d.pushErrorScope('internal');
    d.pushErrorScope('out-of-memory');
    d.pushErrorScope('validation');
    const pop = () => [d.popErrorScope(), d.popErrorScope(), d.popErrorScope()];
    let result: T;
    try {
      result = fn();
    } catch (e) {
      pop(); // fn's own error is the one to report
      throw e;
    }
    const pops = pop();
    if (result instanceof Promise) throw new Error(`${what}: error scopes take synchronous work only (an await inside would leave them open to others' errors)`);
    return { result, checked: this.readScopes(what, pops).then(() => result) };
  }

  /** Throws naming `what` if one of the popped scopes (validation, out-of-memory, internal) caught an error. */
  private async readScopes(what: string, pops: Promise<GPUError | null>[]): Promise<void> {
    const errors = await this.untilLost(what, Promise.all(pops));
    const first = errors.find((e) => e !== null);
    if (first) {
      const kind = errors[1] === first ? 'out of GPU memory' : errors[2] === first ? 'internal GPU error' : 'validation error';
      throw new Error(`${what}: ${kind}: ${first.message}`);
    }
    this.check(what);
  }

  destroy(): void {
    this.device.destroy();
  }
}
