// Getting a WebGPU device in Node through Dawn (npm `webgpu`): the machine's GPU when it has
// one, else a CPU Vulkan driver (Mesa lavapipe, then SwiftShader), else one clear error.
//
// `webgpu` (native Dawn binaries, tens of MB) is an optional dependency that only this entry
// needs: it is imported here, on the first createNodeGpu() call, so that the package installs
// and its other entries (./browser, ./worker, ./core) work without it.
import { existsSync } from 'node:fs';
import { Gpu } from '../core/gpu.js';
import { withoutDawnWarnings } from './dawn-warnings.js';

/** CPU Vulkan drivers, best first: lavapipe (Mesa >= 24 works with Dawn), then SwiftShader. */
export const CPU_ICDS = [
  '/usr/share/vulkan/icd.d/lvp_icd.json',
  '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json',
  '/usr/share/vulkan/icd.d/lvp_icd.aarch64.json',
  '/usr/lib/chromium/vk_swiftshader_icd.json',
];

export interface NodeGpuOptions {
  /** 'auto' (default): GPU, else a CPU driver. 'cpu': a CPU driver only. Or a path to a Vulkan ICD json. */
  adapter?: string;
  /** Extra Dawn instance flags, e.g. 'enable-dawn-features=allow_unsafe_apis,disable_robustness'. */
  dawnFlags?: string[];
  /**
   * Keep Dawn's adapter warnings off stderr by pointing file descriptor 2 at /dev/null around the
   * adapter request (dawn-warnings.ts). Only for a process that opens no file on another thread
   * meanwhile (the CLI at its first load): a file opened in that instant could take fd 2.
   */
  silenceAdapterWarnings?: boolean;
}

let globalsInstalled = false;
/** dawn.node instances must stay reachable: once one is collected, its devices' promises never settle. */
const instances: GPU[] = [];

/** The exact pinned version this engine is tested with (package.json optionalDependencies). */
export const WEBGPU_PACKAGE = 'webgpu@0.6.2';

type DawnModule = typeof import('webgpu');
let dawn: Promise<DawnModule> | undefined;

/** npm `webgpu`, imported once; a missing package is one line naming it. */
function loadDawn(): Promise<DawnModule> {
  dawn ??= import('webgpu').catch((e: NodeJS.ErrnoException) => {
    dawn = undefined; // installed later in the same process: try again
    const missing = e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND';
    if (missing && /'webgpu'|"webgpu"|\bwebgpu\b/.test(String(e?.message))) {
      throw new Error(`dualtoken-webgpu: the Node entry needs the optional package 'webgpu' (npm install ${WEBGPU_PACKAGE})`);
    }
    throw new Error(`dualtoken: the optional package 'webgpu' failed to load (${(e as Error)?.message ?? e}); reinstall it: npm install ${WEBGPU_PACKAGE}`);
  });
  return dawn;
}

export async function createNodeGpu(opts: NodeGpuOptions = {}): Promise<Gpu> {
  const { create, globals } = await loadDawn();
  if (!globalsInstalled) {
    // WebGPU's constants (GPUBufferUsage, GPUShaderStage, ...) as the browser has them.
    Object.assign(globalThis, globals);
    globalsInstalled = true;
  }
  process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on headless machines
  const choice = opts.adapter ?? process.env.DUALTOKEN_ADAPTER ?? 'auto';
  const tried: string[] = [];
  const attempt = async (icd: string | undefined, what: string): Promise<Gpu | undefined> => {
    const saved = process.env.VK_ICD_FILENAMES;
    if (icd) process.env.VK_ICD_FILENAMES = icd;
    try {
      const instance = create(opts.dawnFlags ?? (process.env.DUALTOKEN_DAWN_FLAGS ? process.env.DUALTOKEN_DAWN_FLAGS.split(' ') : []));
      instances.push(instance);
      const request = () => instance.requestAdapter({ powerPreference: 'high-performance' });
      const adapter = await (opts.silenceAdapterWarnings ? withoutDawnWarnings(request) : request());
      if (!adapter) {
        tried.push(`${what}: no adapter`);
        return undefined;
      }
      return await Gpu.fromAdapter(adapter);
    } catch (e) {
      tried.push(`${what}: ${(e as Error).message}`);
      return undefined;
    } finally {
      if (icd) {
        if (saved === undefined) delete process.env.VK_ICD_FILENAMES;
        else process.env.VK_ICD_FILENAMES = saved;
      }
    }
  };

  if (choice !== 'auto' && choice !== 'cpu') {
    const gpu = existsSync(choice) ? await attempt(choice, `Vulkan ICD ${choice}`) : (tried.push(`${choice}: file not found`), undefined);
    if (gpu) return gpu;
  } else {
    if (choice === 'auto') {
      const gpu = await attempt(undefined, process.env.VK_ICD_FILENAMES ? `VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES}` : 'the system Vulkan drivers');
      if (gpu) return gpu;
    }
    for (const icd of CPU_ICDS.filter((p) => existsSync(p))) {
      const gpu = await attempt(icd, icd);
      if (gpu) return gpu;
    }
    if (!CPU_ICDS.some((p) => existsSync(p))) tried.push(`no CPU Vulkan driver found (looked for ${CPU_ICDS.join(', ')})`);
  }
  throw new Error(
    `no WebGPU adapter. Tried: ${tried.join('; ')}. ` +
      `Fix: on Debian 12 install Mesa lavapipe >= 24 from bookworm-backports ` +
      `(apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1), or Debian's chromium package for SwiftShader, ` +
      `or a GPU driver with Vulkan; or point DUALTOKEN_ADAPTER at a Vulkan ICD json.`,
  );
}
