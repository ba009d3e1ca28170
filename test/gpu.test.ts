// Device discovery: the adapter in use, its real limits and features, and one clear error when
// there is none.
import { describe, expect, it } from 'vitest';
import { create } from 'webgpu';
import { WANTED_FEATURES } from '../src/core/gpu.js';
import { createNodeGpu } from '../src/node/gpu.js';

describe('createNodeGpu', () => {
  it('says what it tried and how to fix it when no adapter can be had', async () => {
    await expect(createNodeGpu({ adapter: '/nonexistent/icd.json' })).rejects.toThrow(
      /^no WebGPU adapter\. Tried: \/nonexistent\/icd\.json: file not found\. Fix: .*mesa-vulkan-drivers/,
    );
  });

  it("requests the adapter's own limits and every wanted feature it has", async () => {
    const gpu = await createNodeGpu();
    const instance = create([]);
    const adapter = (await instance.requestAdapter({ powerPreference: 'high-performance' }))!;
    try {
      console.log(`adapter: ${gpu.describe()}; maxBufferSize ${gpu.limits.maxBufferSize}; features ${[...gpu.device.features].join(' ')}`);
      for (const limit of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup'] as const) {
        expect(gpu.limits[limit], limit).toBe(adapter.limits[limit]);
      }
      for (const f of WANTED_FEATURES) expect(gpu.device.features.has(f), f).toBe(adapter.features.has(f));
    } finally {
      gpu.destroy();
    }
  });
});
