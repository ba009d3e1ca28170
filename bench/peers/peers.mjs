// The peer engines. Each peer: init() once per process, then prepare(op, data) per op, which
// returns { run(), runBatch?(k), dispose(), timing, notes }. run() executes the op once and
// resolves after the output is back on the CPU, with an accessor in PyTorch-layout indices.
// runBatch(k) (where the API allows) enqueues k runs on GPU-resident data and reads back only
// the last output.
import { createRequire } from 'node:module';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { accessor } from './ops.mjs';
import { installNavigatorGpu, installOrtWebShims, describeAdapter, loadedVulkanDrivers, selectVulkanDriver } from './dawn.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const require = createRequire(import.meta.url);
const pkgVersion = (name) => require(`${name}/package.json`).version;

// ---------------------------------------------------------------------------------------------
// TF.js, WebGPU backend, on Dawn for Node
// ---------------------------------------------------------------------------------------------
function tfjsPeer(opts) {
  let tf;
  const matmulType = opts.tfjsMatmulType;
  return {
    name: 'tfjs-webgpu',
    async init() {
      const gpu = installNavigatorGpu();
      tf = await import('@tensorflow/tfjs-core');
      await import('@tensorflow/tfjs-backend-webgpu');
      if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed');
      await tf.ready();
      const adapter = await gpu.requestAdapter();
      return {
        version: `@tensorflow/tfjs-core ${tf.version_core}, @tensorflow/tfjs-backend-webgpu ${pkgVersion('@tensorflow/tfjs-backend-webgpu')}`,
        adapter: describeAdapter(adapter),
        settings: { WEBGPU_MATMUL_PROGRAM_TYPE: matmulType },
      };
    },
    async prepare(op, d) {
      // WEBGPU_MATMUL_PROGRAM_TYPE: -1 auto, 0 reduce, 1 split-K, 2 small-output, 3 packed. It is
      // read when a matmul is dispatched. Split-K only supports batch 1: batched (attention)
      // matmuls keep TF.js's own choice then.
      const mmType = op.kind === 'linear' || matmulType !== 1 ? matmulType : -1;
      tf.env().set('WEBGPU_MATMUL_PROGRAM_TYPE', mmType);
      const keep = [];
      const T = (data, shape) => {
        const t = tf.tensor(data, shape, 'float32');
        keep.push(t);
        return t;
      };
      let f;
      let at;
      let notes;
      if (op.kind === 'linear') {
        const { M, K, N } = op.shape;
        const x = T(d.x, [M, K]);
        const w = T(d.wT, [K, N]);
        const b = T(d.b, [N]);
        f = () => tf.fused.matMul({ a: x, b: w, bias: b });
        at = (out) => accessor(op, out);
        notes = `tf.fused.matMul with bias; WEBGPU_MATMUL_PROGRAM_TYPE=${mmType}`;
      } else if (op.kind === 'attention') {
        const { heads: H, tokens: L, head_dim: D, scale } = op.shape;
        const q = T(d.q, [H, L, D]);
        const k = T(d.k, [H, L, D]);
        const v = T(d.v, [H, L, D]);
        const s = T(Float32Array.of(scale), []);
        f = () => tf.tidy(() => tf.matMul(tf.softmax(tf.mul(tf.matMul(q, k, false, true), s)), v));
        at = (out) => accessor(op, out);
        notes = `matMul(q,k^T) * scale, softmax, matMul(.,v); WEBGPU_MATMUL_PROGRAM_TYPE=${mmType}${mmType !== matmulType ? ' (split-K supports batch 1 only)' : ''}`;
      } else if (op.kind === 'conv') {
        // TF.js convolutions are NHWC with [kh, kw, Cin, Cout] filters.
        const { cin: C, cout: Co, height: Hh, width: Ww } = op.shape;
        const xh = new Float32Array(C * Hh * Ww);
        for (let c = 0; c < C; c++) for (let p = 0; p < Hh * Ww; p++) xh[p * C + c] = d.x[c * Hh * Ww + p];
        const wf = new Float32Array(9 * C * Co);
        for (let o = 0; o < Co; o++)
          for (let c = 0; c < C; c++) for (let t = 0; t < 9; t++) wf[(t * C + c) * Co + o] = d.w[(o * C + c) * 9 + t];
        const x = T(xh, [1, Hh, Ww, C]);
        const w = T(wf, [3, 3, C, Co]);
        const b = T(d.b, [Co]);
        f = () => tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'same', bias: b });
        at = (out) => (co, y, xx) => out[(y * Ww + xx) * Co + co];
        notes = 'tf.fused.conv2d NHWC with bias (input converted to NHWC once, outside the timing)';
      } else if (op.kind === 'groupnorm_silu') {
        // No GroupNorm op in TF.js: moments over each group, normalise, affine, x * sigmoid(x).
        const { channels: C, groups: G, height: Hh, width: Ww, eps } = op.shape;
        const x = T(d.x, [G, (C / G) * Hh * Ww]);
        const gamma = T(d.gamma, [C, 1]);
        const beta = T(d.beta, [C, 1]);
        const e = T(Float32Array.of(eps), []);
        f = () =>
          tf.tidy(() => {
            const { mean, variance } = tf.moments(x, 1, true);
            const n = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, e)));
            const a = tf.add(tf.mul(tf.reshape(n, [C, Hh * Ww]), gamma), beta);
            return tf.mul(a, tf.sigmoid(a));
          });
        at = (out) => accessor(op, out);
        notes = 'tf.moments per group, (x-mean)*rsqrt(var+eps), *gamma+beta, x*sigmoid(x) (NCHW)';
      } else throw new Error(`unknown op kind ${op.kind}`);
      return {
        notes,
        timing: 'per run: ops enqueued on GPU-resident tensors, then await output.data() (readback included)',
        batchTiming: 'per run over k back-to-back runs on GPU-resident tensors, one readback of the last output',
        async run() {
          const y = f();
          try {
            return at(await y.data());
          } finally {
            y.dispose();
          }
        },
        async runBatch(k) {
          let y;
          for (let i = 0; i < k; i++) {
            y?.dispose();
            y = f();
          }
          try {
            return at(await y.data());
          } finally {
            y.dispose();
          }
        },
        dispose() {
          for (const t of keep) t.dispose();
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// onnxruntime-web in Node on Dawn: 'native' = the C++ WebGPU EP compiled to wasm
// (import 'onnxruntime-web/webgpu'); 'jsep' = the JavaScript-kernel WebGPU EP
// (the default 'onnxruntime-web' import in browsers).
// ---------------------------------------------------------------------------------------------
function ortWebPeer(opts, flavor) {
  let ort;
  const file = flavor === 'jsep' ? 'ort.mjs' : 'ort.webgpu.mjs';
  return {
    name: flavor === 'jsep' ? 'ort-web-jsep' : 'ort-web',
    async init() {
      const gpu = installNavigatorGpu();
      installOrtWebShims();
      const distDir = `${here}node_modules/onnxruntime-web/dist/`;
      ort = await import(pathToFileURL(distDir + file).href);
      ort.env.wasm.numThreads = 1; // no worker threads in Node; the GPU does the work
      ort.env.wasm.wasmPaths = pathToFileURL(distDir).href;
      ort.env.logLevel = 'error';
      const adapter = await gpu.requestAdapter();
      return {
        version: `onnxruntime-web ${ort.env.versions?.web ?? pkgVersion('onnxruntime-web')} (${file}, ${flavor === 'jsep' ? 'JSEP WebGPU EP' : 'native WebGPU EP'})`,
        adapter: describeAdapter(adapter),
        settings: { numThreads: 1, dist: file },
      };
    },
    async prepare(op, d) {
      const model = op.onnx(d);
      const sessionOptions = {
        executionProviders: ['webgpu'],
        graphOptimizationLevel: 'all',
        extra: { session: { disable_cpu_ep_fallback: '1' } },
      };
      const session = await ort.InferenceSession.create(model, sessionOptions);
      const inputs = op.onnxInputs(d);
      const feeds = {};
      for (const [name, v] of Object.entries(inputs)) feeds[name] = new ort.Tensor('float32', v.data, v.dims);
      const outName = session.outputNames[0];
      let gpuSession;
      let gpuFeeds;
      const gpuBuffers = [];
      return {
        notes: 'ONNX single-op model (weights as initializers), all nodes on WebGPU (CPU fallback disabled)',
        timing: 'per run: session.run with CPU input tensors (upload included) and CPU output (readback included)',
        batchTiming: 'per run over k back-to-back session.run on GPU-resident inputs/outputs (gpu-buffer), one readback',
        async run() {
          const r = await session.run(feeds);
          const out = r[outName];
          return accessor(op, out.data);
        },
        async runBatch(k) {
          if (!gpuSession) {
            gpuSession = await ort.InferenceSession.create(model, { ...sessionOptions, preferredOutputLocation: 'gpu-buffer' });
            const device = ort.env.webgpu.device;
            gpuFeeds = {};
            for (const [name, v] of Object.entries(inputs)) {
              const buf = device.createBuffer({
                size: v.data.byteLength,
                usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
              });
              device.queue.writeBuffer(buf, 0, v.data);
              gpuBuffers.push(buf);
              gpuFeeds[name] = ort.Tensor.fromGpuBuffer(buf, { dataType: 'float32', dims: v.dims });
            }
          }
          let out;
          for (let i = 0; i < k; i++) {
            out?.dispose();
            out = (await gpuSession.run(gpuFeeds))[outName];
          }
          const data = await out.getData(true);
          return accessor(op, data);
        },
        dispose() {
          for (const b of gpuBuffers) b.destroy();
          gpuSession?.release();
          return session.release();
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// onnxruntime-node: its 'webgpu' EP (Dawn built into libonnxruntime, Vulkan driver chosen by
// VK_ICD_FILENAMES) or, as a CPU reference, its default CPU EP (MLAS).
// ---------------------------------------------------------------------------------------------
function ortNodePeer(opts, ep) {
  let ort;
  return {
    name: ep === 'cpu' ? 'ort-node-cpu' : 'ort-node',
    reference: ep === 'cpu',
    async init() {
      const icd = ep === 'webgpu' ? selectVulkanDriver() : undefined;
      ort = require('onnxruntime-node');
      const backends = ort.listSupportedBackends?.() ?? [];
      if (!backends.some((b) => b.name === ep)) throw new Error(`onnxruntime-node has no '${ep}' backend (has: ${backends.map((b) => b.name).join(', ')})`);
      return {
        version: `onnxruntime-node ${pkgVersion('onnxruntime-node')} (${ep} EP)`,
        adapter: ep === 'webgpu' ? { vulkan_icd: icd, note: 'Dawn inside libonnxruntime; the driver is listed in drivers_loaded' } : { cpu: 'MLAS' },
        settings: { executionProvider: ep },
      };
    },
    async prepare(op, d) {
      const session = await ort.InferenceSession.create(op.onnx(d), {
        executionProviders: [ep],
        graphOptimizationLevel: 'all',
        ...(ep === 'webgpu' ? { extra: { session: { disable_cpu_ep_fallback: '1' } } } : {}),
      });
      const feeds = {};
      for (const [name, v] of Object.entries(op.onnxInputs(d))) feeds[name] = new ort.Tensor('float32', v.data, v.dims);
      const outName = session.outputNames[0];
      return {
        notes:
          ep === 'webgpu'
            ? 'ONNX single-op model (weights as initializers), all nodes on WebGPU (CPU fallback disabled)'
            : 'CPU reference (not a WebGPU peer): ORT default CPU EP, default threads',
        timing: 'per run: session.run with CPU inputs/outputs (upload and readback included; the Node API has no GPU-resident I/O)',
        async run() {
          const r = await session.run(feeds);
          return accessor(op, r[outName].data);
        },
        dispose() {
          return session.release();
        },
      };
    },
  };
}

export const PEER_NAMES = ['tfjs-webgpu', 'ort-web', 'ort-web-jsep', 'ort-node', 'ort-node-cpu'];
export const DEFAULT_PEERS = ['tfjs-webgpu', 'ort-web', 'ort-node', 'ort-node-cpu'];

export function makePeer(name, opts) {
  switch (name) {
    case 'tfjs-webgpu':
      return tfjsPeer(opts);
    case 'ort-web':
      return ortWebPeer(opts, 'native');
    case 'ort-web-jsep':
      return ortWebPeer(opts, 'jsep');
    case 'ort-node':
      return ortNodePeer(opts, 'webgpu');
    case 'ort-node-cpu':
      return ortNodePeer(opts, 'cpu');
    default:
      throw new Error(`unknown peer ${name} (known: ${PEER_NAMES.join(', ')})`);
  }
}

export { loadedVulkanDrivers };
