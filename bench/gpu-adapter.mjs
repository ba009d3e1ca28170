// Prints what the machine's WebGPU adapter offers through Dawn, as JSON: its info, features
// (with Dawn's unsafe APIs allowed, so experimental ones such as
// chromium-experimental-subgroup-matrix show when the driver supports them), the subgroup-matrix
// configurations and the limits. bench/gpu.sh runs it first on the GPU machine:
//   node bench/gpu-adapter.mjs [path/to/webgpu/index.js]
const path = process.argv[2] ?? new URL('../node_modules/webgpu/index.js', import.meta.url).href;
const { create, globals } = await import(path.startsWith('file:') ? path : new URL(path, `file://${process.cwd()}/`).href);
Object.assign(globalThis, globals);
const out = {};
for (const [name, flags] of [['default', []], ['allow_unsafe_apis', ['enable-dawn-features=allow_unsafe_apis']]]) {
  const adapter = await create(flags).requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    out[name] = null;
    continue;
  }
  const info = {};
  for (const k of ['vendor', 'architecture', 'device', 'description', 'subgroupMinSize', 'subgroupMaxSize', 'subgroupMatrixConfigs']) info[k] = adapter.info?.[k];
  const limits = {};
  for (const k in adapter.limits) limits[k] = adapter.limits[k];
  out[name] = { info, features: [...adapter.features].sort(), limits };
}
console.log(JSON.stringify(out, null, 1));
process.exit(0);
