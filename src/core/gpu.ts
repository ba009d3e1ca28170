// The one place that owns a GPUDevice: the limits and features we asked for, and errors.
// Every WebGPU validation / out-of-memory / internal error becomes a thrown Error that names
// what was being done (the kernel); nothing is only logged.

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

  private constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterDescription,
  ) {
    device.lost.then((info) => {
      if (info.reason !== 'destroyed') this.lostReason = `GPU device lost: ${info.message || info.reason}`;
    });
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

  /** Throws if the device was lost or reported an error outside any scope. */
  check(what: string): void {
    if (this.lostReason) throw new Error(`${what}: ${this.lostReason}`);
    if (this.uncaptured) {
      const msg = this.uncaptured;
      this.uncaptured = undefined;
      throw new Error(`${what}: WebGPU error: ${msg}`);
    }
  }

  /** Runs `fn` inside validation + out-of-memory + internal error scopes; throws naming `what`. */
  async scoped<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    this.check(what);
    const d = this.device;
    d.pushErrorScope('internal');
    d.pushErrorScope('out-of-memory');
    d.pushErrorScope('validation');
    let result: T | undefined;
    let thrown: unknown;
    try {
      result = await fn();
    } catch (e) {
      thrown = e;
    }
    const errors = [await d.popErrorScope(), await d.popErrorScope(), await d.popErrorScope()];
    const first = errors.find((e) => e !== null);
    if (thrown) throw thrown;
    if (first) {
      const kind = errors[1] === first ? 'out of GPU memory' : errors[2] === first ? 'internal GPU error' : 'validation error';
      throw new Error(`${what}: ${kind}: ${first.message}`);
    }
    this.check(what);
    return result as T;
  }

  destroy(): void {
    this.device.destroy();
  }
}
