// The program machinery: bindings and uniforms checked against the reflected WGSL, WebGPU errors
// thrown with the kernel's name, oversized grids folded, activations' memory planned from their lifetimes.
import { describe, expect, it } from 'vitest';
import { KernelLibrary } from '../src/core/kernels.js';
import { addScaled } from '../src/core/ops.js';
import { Program } from '../src/core/program.js';
import { Tensor, releaseBuffer } from '../src/core/tensor.js';
import { runAndRead, testGpu, upload } from './helpers/gpu.js';

describe('program', () => {
  it('folds a grid over the per-dimension limit and still covers every element', async () => {
    const { gpu, kernels } = await testGpu();
    const max = gpu.limits.maxComputeWorkgroupsPerDimension;
    const n = (max + 1000) * 256; // one more row of workgroups than fits in x
    const a = new Float32Array(n).fill(1);
    const b = new Float32Array(7).map((_, i) => i);
    const prog = new Program(kernels, 'fold');
    const y = addScaled(prog, upload(gpu, [n], a), upload(gpu, [7], b), 2);
    const [got] = await runAndRead(prog, [y]);
    let bad = -1;
    for (let i = 0; i < n; i++) if (got[i] !== 1 + 2 * (i % 7)) { bad = i; break; }
    expect(bad, `first wrong element ${bad}: ${got[bad]}`).toBe(-1);
    prog.destroy();
  });

  it('checks bindings and uniforms by name before anything reaches WebGPU', async () => {
    const { gpu, kernels } = await testGpu();
    const prog = new Program(kernels, 'checks');
    const t = upload(gpu, [4], new Float32Array(4));
    expect(() => prog.dispatch({ kernel: 'add_scaled', uniforms: { n: 4, nb: 4, alpha: 1 }, bind: { a: t, b: t }, groups: 1 })).toThrow("kernel 'add_scaled': binding 'y' was not given");
    expect(() => prog.dispatch({ kernel: 'add_scaled', uniforms: { n: 4, nb: 4, alpha: 1 }, bind: { a: t, b: t, y: t, z: t }, groups: 1 })).toThrow(/no storage binding named 'z'/);
    expect(() => prog.dispatch({ kernel: 'add_scaled', uniforms: { n: 4, alpha: 1 }, bind: { a: t, b: t, y: t }, groups: 1 })).toThrow("kernel 'add_scaled': uniform member 'nb' needs a finite value (got undefined)");
    expect(() => prog.dispatch({ kernel: 'add_scaled', uniforms: { n: -1, nb: 4, alpha: 1 }, bind: { a: t, b: t, y: t }, groups: 1 })).toThrow(/u32 'n' = -1 is out of range/);
    expect(() => prog.dispatch({ kernel: 'nope', bind: {}, groups: 1 })).toThrow("kernel 'nope': no shader named nope.wgsl");
    expect(() => prog.dispatch({ kernel: 'attention', bind: {}, groups: 1 })).toThrow(/placeholder \{\{HEAD_DIM\}\} needs a value/);
  });

  it('refuses a released buffer, naming the binding, the tensor and why it was freed', async () => {
    const { gpu, kernels } = await testGpu();
    const prog = new Program(kernels, 'released');
    const t = upload(gpu, [4], new Float32Array(4), 'some.weight');
    const y = upload(gpu, [4], new Float32Array(4), 'y');
    releaseBuffer(t.buffer, 'was freed for the test');
    expect(() => prog.dispatch({ kernel: 'add_scaled', uniforms: { n: 4, nb: 4, alpha: 1 }, bind: { a: t.view([2, 2]), b: y, y }, groups: 1 })).toThrow(
      "kernel 'add_scaled': binding 'a' (some.weight) was freed for the test",
    );
    expect(prog.boundBuffers().size).toBe(0);
    prog.dispatch({ kernel: 'add_scaled', uniforms: { n: 4, nb: 4, alpha: 1 }, bind: { a: y, b: y, y: upload(gpu, [4], new Float32Array(4)) }, groups: 1 });
    expect(prog.boundBuffers().has(y.buffer)).toBe(true);
    prog.destroy();
  });

  it('refuses a binding over the adapter limit, naming kernel, tensor and limit', async () => {
    const { gpu, kernels } = await testGpu();
    const prog = new Program(kernels, 'limit');
    const big = new Tensor(upload(gpu, [4], new Float32Array(4)).buffer, [gpu.limits.maxStorageBufferBindingSize / 4 + 1], 'f32', 0, 'huge');
    const t = upload(gpu, [1], new Float32Array(1));
    // Recorded directly: the ops bind large activations in ranges (split.ts), a dispatch does not.
    const record = () => prog.dispatch({ kernel: 'add_scaled', uniforms: { n: 4, nb: 1, alpha: 1 }, bind: { a: big, b: t, y: upload(gpu, [4], new Float32Array(4)) }, groups: 1 });
    expect(record).toThrow(/kernel 'add_scaled': binding 'a' \(huge \[\d+\], \d+ bytes\) exceeds the adapter's maxStorageBufferBindingSize/);
  });

  it('throws WebGPU validation errors with the kernel name', async () => {
    const { gpu, kernels } = await testGpu();
    const prog = new Program(kernels, 'aliasing');
    const t = upload(gpu, [4], new Float32Array(4), 'same');
    // The same buffer bound read-only and writable in one dispatch is a WebGPU validation error.
    prog.dispatch({ kernel: 'add_scaled', uniforms: { n: 4, nb: 4, alpha: 1 }, bind: { a: t, b: t, y: t }, groups: 1 });
    await expect(prog.run()).rejects.toThrow(/aliasing: kernel 'add_scaled' \(dispatch #0\): validation error: .*Buffer "same"/s);
  });

  it('throws a WGSL compile error naming the kernel', async () => {
    const { gpu } = await testGpu();
    const lib = new KernelLibrary(gpu, { broken: '@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(1) fn main() { y[0] = undefined_thing; }' });
    const prog = new Program(lib, 'broken');
    prog.dispatch({ kernel: 'broken', bind: { y: upload(gpu, [1], new Float32Array(1)) }, groups: 1 });
    await expect(prog.run()).rejects.toThrow(/kernel 'broken'/);
  });

  it('plans activations by their lifetimes: disjoint ones share a buffer, overlapping and pinned ones do not', async () => {
    const { gpu, kernels } = await testGpu();
    const prog = new Program(kernels, 'plan');
    const x = upload(gpu, [100], new Float32Array(100).fill(1), 'x');
    const a = addScaled(prog, x, x, 1, 'a'); // #0: 2
    const b = addScaled(prog, a.view([10, 10]), x, 1, 'b'); // #1: 3, a's last use (through a view)
    const c = addScaled(prog, b, x, 1, 'c'); // #2: 4, may take a's buffer
    const d = addScaled(prog, c, b, 1, 'd'); // #3: 7
    d.pinned = true;
    expect(() => a.buffer).toThrow(/before its program is finalized/);
    const planned = prog.allocatedBytes;
    await prog.finalize();
    expect(prog.allocatedBytes).toBe(planned);
    expect(c.buffer).toBe(a.buffer);
    expect(b.buffer).not.toBe(a.buffer);
    expect([a.buffer, b.buffer]).not.toContain(d.buffer);
    const [got] = await runAndRead(prog, [d, c]);
    expect(got[0]).toBe(7);
    // a's memory holds c by the end of the run: reading it back is refused, as is recording more.
    await expect(prog.run([a])).rejects.toThrow("plan: cannot read 'a' after the run: it is not pinned, and 'c' reuses its memory");
    expect(() => prog.alloc([4], 'late')).toThrow(/after the program was finalized/);
    expect(() => prog.runNow({ kernel: 'add_scaled', uniforms: { n: 4, nb: 4, alpha: 1 }, bind: { a: x, b: x, y: x }, groups: 1 })).toThrow(/after the program was finalized/);
    prog.destroy();
    x.buffer.destroy();
  });

  it('refuses an activation in runNow and one of another program', async () => {
    const { gpu, kernels } = await testGpu();
    const x = upload(gpu, [4], new Float32Array(4), 'x');
    const other = new Program(kernels, 'other');
    const theirs = addScaled(other, x, x, 1, 'theirs');
    const prog = new Program(kernels, 'mine');
    const mine = prog.alloc([4], 'mine');
    expect(() => prog.runNow({ kernel: 'add_scaled', uniforms: { n: 4, nb: 4, alpha: 1 }, bind: { a: x, b: x, y: mine }, groups: 1 })).toThrow(/binding 'y' \(mine\) is an activation/);
    expect(() => addScaled(prog, theirs, x)).toThrow(/binding 'a' \(theirs\) is an activation of another program/);
    x.buffer.destroy();
  });
});
