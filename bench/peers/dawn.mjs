// Dawn for Node (npm `webgpu`, the library's own dependency, resolved from the project root)
// installed as the browser globals the peers expect: navigator.gpu and GPUBufferUsage & co.
// The object returned by create([]) is kept reachable for the life of the process: once it is
// collected, its devices' promises never settle.
import { readFileSync } from 'node:fs';
import { create, globals } from 'webgpu';

export const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';
const keep = [];

/** Select the Vulkan driver before any WebGPU instance exists (Dawn reads it at creation). */
export function selectVulkanDriver() {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  process.env.VK_ICD_FILENAMES ??= LAVAPIPE_ICD;
  return process.env.VK_ICD_FILENAMES;
}

/** Install navigator.gpu (Node 20 has no navigator) and the WebGPU constants; returns the GPU. */
export function installNavigatorGpu(extraFlags = []) {
  selectVulkanDriver();
  Object.assign(globalThis, globals);
  const gpu = create(extraFlags);
  keep.push(gpu);
  const nav = globalThis.navigator ?? {};
  Object.defineProperty(globalThis, 'navigator', {
    value: Object.assign(Object.create(Object.getPrototypeOf(nav)), nav, { gpu }),
    configurable: true,
    writable: true,
  });
  return gpu;
}

/**
 * Two gaps of dawn.node that onnxruntime-web's native WebGPU EP (its emscripten build) runs into:
 * - GPUSupportedFeatures has has/keys/size but no forEach (the EP enumerates features with it);
 * - queue.writeBuffer on a view of a SharedArrayBuffer (the threaded wasm heap) crashes the
 *   process (segfault): copy the written range out of shared memory first.
 */
export function installOrtWebShims() {
  const F = globals.GPUSupportedFeatures?.prototype;
  if (F && typeof F.forEach !== 'function') {
    Object.defineProperty(F, 'forEach', {
      value(cb, thisArg) {
        for (const name of this) cb.call(thisArg, name, name, this);
      },
      configurable: true,
      writable: true,
    });
  }
  const Q = globals.GPUQueue?.prototype;
  if (Q && !Q.writeBuffer.__unshared) {
    const orig = Q.writeBuffer;
    const patched = function writeBuffer(buffer, bufferOffset, data, dataOffset, size) {
      if (typeof SharedArrayBuffer !== 'undefined') {
        if (data instanceof SharedArrayBuffer) {
          const off = dataOffset ?? 0;
          const n = size ?? data.byteLength - off;
          return orig.call(this, buffer, bufferOffset, new Uint8Array(data, off, n).slice());
        }
        if (ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer) {
          const per = data.BYTES_PER_ELEMENT ?? 1;
          const u8 = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
          const off = (dataOffset ?? 0) * per;
          const n = size !== undefined ? size * per : data.byteLength - off;
          return orig.call(this, buffer, bufferOffset, u8.slice(off, off + n));
        }
      }
      return orig.call(this, buffer, bufferOffset, data, dataOffset, size);
    };
    patched.__unshared = true;
    Q.writeBuffer = patched;
  }
}

/** A plain description of an adapter (GPUAdapterInfo's fields are getters). */
export function describeAdapter(adapter) {
  const info = adapter?.info ?? {};
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
  };
}

/** The Vulkan driver libraries this process has loaded: proof of which driver really ran. */
export function loadedVulkanDrivers() {
  try {
    const libs = readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[5])
      .filter((p) => p && /libvulkan_|swiftshader|nvidia|radeon|intel_/i.test(p));
    return [...new Set(libs)];
  } catch {
    return [];
  }
}
