// The benchmark ops, shared by all peers: shapes, deterministic data in PyTorch layouts
// (NCHW activations, Linear weight [N,K], Conv weight [Cout,Cin,3,3]), the work count
// (FLOP or bytes), ONNX models of each op, and float64 CPU references on sampled outputs.
import { buildModel } from './onnx.mjs';

/** mulberry32: small deterministic PRNG, uniform [-1, 1) scaled. */
export function randomArray(n, seed, scale = 1) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    a[i] = (u * 2 - 1) * scale;
  }
  return a;
}

const prod = (d) => d.reduce((a, b) => a * b, 1);

/** Sampled-output comparison: max |peer - ref| relative to max |ref| over the samples. */
export function compareSamples(samples, at, tol = 1e-3) {
  const c = { samples: samples.length, max_abs_err: 0, max_abs_ref: 0 };
  let worst;
  for (const { idx, ref } of samples) {
    const got = at(...idx);
    const err = Number.isFinite(got) ? Math.abs(got - ref) : Infinity;
    if (!worst || err > c.max_abs_err) worst = { idx, ref, got };
    c.max_abs_err = Math.max(c.max_abs_err, err);
    c.max_abs_ref = Math.max(c.max_abs_ref, Math.abs(ref));
  }
  c.rel_err = c.max_abs_err / Math.max(c.max_abs_ref, 1e-12);
  c.ok = c.rel_err <= tol;
  if (!c.ok) c.worst = worst;
  return c;
}

// ---------------------------------------------------------------------------------------------
function linearOp(M, K, N) {
  const id = `linear_${K}x${N}`;
  return {
    id,
    kind: 'linear',
    op: `linear ${M}x${K} -> ${N}`,
    shape: { M, K, N, bias: true },
    flops: 2 * M * N * K,
    unit: 'GFLOP/s',
    make() {
      const x = randomArray(M * K, 11);
      const w = randomArray(N * K, 12, 1 / Math.sqrt(K)); // [N, K] (nn.Linear.weight)
      const b = randomArray(N, 13, 0.5);
      const wT = new Float32Array(K * N); // [K, N]
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wT[k * N + n] = w[n * K + k];
      return { x, w, wT, b };
    },
    /** variant 'matmul': MatMul(x, W^T) + Add(b) as torch.onnx exports nn.Linear on 3-D input;
     *  variant 'gemm': Gemm(x, W, b, transB=1) as it exports nn.Linear on 2-D input. */
    onnx(d, variant = 'matmul') {
      const io = { inputs: [{ name: 'x', dims: [M, K] }], outputs: [{ name: 'y', dims: [M, N] }] };
      if (variant === 'gemm')
        return buildModel({
          ...io,
          initializers: [
            { name: 'W', dims: [N, K], data: d.w },
            { name: 'B', dims: [N], data: d.b },
          ],
          nodes: [{ op: 'Gemm', inputs: ['x', 'W', 'B'], outputs: ['y'], attrs: { transB: 1 } }],
        });
      return buildModel({
        ...io,
        initializers: [
          { name: 'WT', dims: [K, N], data: d.wT },
          { name: 'B', dims: [N], data: d.b },
        ],
        nodes: [
          { op: 'MatMul', inputs: ['x', 'WT'], outputs: ['xw'] },
          { op: 'Add', inputs: ['xw', 'B'], outputs: ['y'] },
        ],
      });
    },
    onnxInputs: (d) => ({ x: { data: d.x, dims: [M, K] } }),
    outputDims: [M, N],
    samples(d) {
      const pts = [[0, 0], [M - 1, N - 1], [0, N - 1], [M - 1, 0]];
      const r = randomArray(24, 99);
      for (let i = 0; i < 12; i++) pts.push([Math.floor(((r[2 * i] + 1) / 2) * M), Math.floor(((r[2 * i + 1] + 1) / 2) * N)]);
      return pts.map(([i, j]) => {
        let s = d.b[j];
        for (let k = 0; k < K; k++) s += d.x[i * K + k] * d.w[j * K + k];
        return { idx: [i, j], ref: s };
      });
    },
  };
}

function attentionOp(H, L, D) {
  const scale = 1 / Math.sqrt(D);
  return {
    id: `attention_${H}x${L}x${D}`,
    kind: 'attention',
    op: `attention ${H} heads x ${L} tokens x ${D}`,
    shape: { heads: H, tokens: L, head_dim: D, scale },
    flops: 4 * H * L * L * D,
    unit: 'GFLOP/s',
    make() {
      return { q: randomArray(H * L * D, 21), k: randomArray(H * L * D, 22), v: randomArray(H * L * D, 23) };
    },
    /** softmax(Q K^T * scale) V with Transpose/MatMul/Mul/Softmax/MatMul (as torch.onnx exports it). */
    onnx() {
      const dims = [1, H, L, D];
      return buildModel({
        inputs: ['q', 'k', 'v'].map((name) => ({ name, dims })),
        outputs: [{ name: 'o', dims }],
        initializers: [{ name: 'scale', dims: [], data: Float32Array.of(scale) }],
        nodes: [
          { op: 'Transpose', inputs: ['k'], outputs: ['kT'], attrs: { perm: [0, 1, 3, 2] } },
          { op: 'MatMul', inputs: ['q', 'kT'], outputs: ['s'] },
          { op: 'Mul', inputs: ['s', 'scale'], outputs: ['ss'] },
          { op: 'Softmax', inputs: ['ss'], outputs: ['p'], attrs: { axis: -1 } },
          { op: 'MatMul', inputs: ['p', 'v'], outputs: ['o'] },
        ],
      });
    },
    onnxInputs: (d) => ({
      q: { data: d.q, dims: [1, H, L, D] },
      k: { data: d.k, dims: [1, H, L, D] },
      v: { data: d.v, dims: [1, H, L, D] },
    }),
    outputDims: [1, H, L, D],
    samples(d) {
      const rows = [[0, 0], [H - 1, L - 1], [7, 300], [12, 555]];
      const out = [];
      for (const [h, i] of rows) {
        const base = h * L * D;
        const s = new Float64Array(L);
        let mx = -Infinity;
        for (let j = 0; j < L; j++) {
          let t = 0;
          for (let e = 0; e < D; e++) t += d.q[base + i * D + e] * d.k[base + j * D + e];
          s[j] = t * scale;
          mx = Math.max(mx, s[j]);
        }
        let sum = 0;
        for (let j = 0; j < L; j++) sum += (s[j] = Math.exp(s[j] - mx));
        for (let e = 0; e < D; e++) {
          let o = 0;
          for (let j = 0; j < L; j++) o += s[j] * d.v[base + j * D + e];
          out.push({ idx: [h, i, e], ref: o / sum });
        }
      }
      return out;
    },
  };
}

function conv3x3Op(C, Co, Hh, Ww) {
  return {
    id: `conv3x3_${C}_${Hh}x${Ww}`,
    kind: 'conv',
    op: `conv3x3 ${C}->${Co} @ ${Hh}x${Ww}`,
    shape: { cin: C, cout: Co, height: Hh, width: Ww, kernel: 3, pad: 1, bias: true },
    flops: 2 * Co * C * 9 * Hh * Ww,
    unit: 'GFLOP/s',
    make() {
      return {
        x: randomArray(C * Hh * Ww, 31), // [1, C, H, W]
        w: randomArray(Co * C * 9, 32, 1 / Math.sqrt(C * 9)), // [Co, C, 3, 3]
        b: randomArray(Co, 33, 0.5),
      };
    },
    onnx(d) {
      return buildModel({
        inputs: [{ name: 'x', dims: [1, C, Hh, Ww] }],
        outputs: [{ name: 'y', dims: [1, Co, Hh, Ww] }],
        initializers: [
          { name: 'W', dims: [Co, C, 3, 3], data: d.w },
          { name: 'B', dims: [Co], data: d.b },
        ],
        nodes: [
          {
            op: 'Conv',
            inputs: ['x', 'W', 'B'],
            outputs: ['y'],
            attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], dilations: [1, 1], group: 1 },
          },
        ],
      });
    },
    onnxInputs: (d) => ({ x: { data: d.x, dims: [1, C, Hh, Ww] } }),
    outputDims: [1, Co, Hh, Ww],
    samples(d) {
      const pts = [[0, 0, 0], [Co - 1, Hh - 1, Ww - 1], [5, 0, Ww - 1], [Co >> 1, Hh >> 1, Ww >> 1], [77 % Co, Hh - 1, 3]];
      const r = randomArray(33, 98);
      for (let i = 0; i < 11; i++)
        pts.push([Math.floor(((r[3 * i] + 1) / 2) * Co), Math.floor(((r[3 * i + 1] + 1) / 2) * Hh), Math.floor(((r[3 * i + 2] + 1) / 2) * Ww)]);
      return pts.map(([co, y, x]) => {
        let s = d.b[co];
        for (let ci = 0; ci < C; ci++)
          for (let ky = 0; ky < 3; ky++)
            for (let kx = 0; kx < 3; kx++) {
              const yy = y + ky - 1;
              const xx = x + kx - 1;
              if (yy < 0 || yy >= Hh || xx < 0 || xx >= Ww) continue;
              s += d.x[(ci * Hh + yy) * Ww + xx] * d.w[((co * C + ci) * 3 + ky) * 3 + kx];
            }
        return { idx: [co, y, x], ref: s };
      });
    },
  };
}

function groupNormSiluOp(C, G, Hh, Ww, eps = 1e-6) {
  return {
    id: `groupnorm_silu_${C}_${Hh}x${Ww}`,
    kind: 'groupnorm_silu',
    op: `GroupNorm(${G})+SiLU ${C}ch @ ${Hh}x${Ww}`,
    shape: { channels: C, groups: G, height: Hh, width: Ww, eps },
    bytes: 2 * 4 * C * Hh * Ww,
    unit: 'GB/s',
    make() {
      return {
        x: randomArray(C * Hh * Ww, 41, 2), // [1, C, H, W]
        gamma: Float32Array.from(randomArray(C, 42, 0.5), (v) => 1 + v),
        beta: randomArray(C, 43, 0.5),
      };
    },
    /** GroupNorm as torch.onnx (opset 17) exports it: Reshape -> InstanceNormalization -> Reshape
     *  -> Mul(gamma) -> Add(beta); SiLU as Sigmoid -> Mul. */
    onnx(d) {
      return buildModel({
        inputs: [{ name: 'x', dims: [1, C, Hh, Ww] }],
        outputs: [{ name: 'y', dims: [1, C, Hh, Ww] }],
        initializers: [
          { name: 'gshape', dims: [3], data: BigInt64Array.of(1n, BigInt(G), -1n) },
          { name: 'xshape', dims: [4], data: BigInt64Array.of(1n, BigInt(C), BigInt(Hh), BigInt(Ww)) },
          { name: 'ones', dims: [G], data: new Float32Array(G).fill(1) },
          { name: 'zeros', dims: [G], data: new Float32Array(G) },
          { name: 'gamma', dims: [C, 1, 1], data: d.gamma },
          { name: 'beta', dims: [C, 1, 1], data: d.beta },
        ],
        nodes: [
          { op: 'Reshape', inputs: ['x', 'gshape'], outputs: ['xg'] },
          { op: 'InstanceNormalization', inputs: ['xg', 'ones', 'zeros'], outputs: ['ng'], attrs: { epsilon: { float: eps } } },
          { op: 'Reshape', inputs: ['ng', 'xshape'], outputs: ['n'] },
          { op: 'Mul', inputs: ['n', 'gamma'], outputs: ['ns'] },
          { op: 'Add', inputs: ['ns', 'beta'], outputs: ['a'] },
          { op: 'Sigmoid', inputs: ['a'], outputs: ['sa'] },
          { op: 'Mul', inputs: ['a', 'sa'], outputs: ['y'] },
        ],
      });
    },
    onnxInputs: (d) => ({ x: { data: d.x, dims: [1, C, Hh, Ww] } }),
    outputDims: [1, C, Hh, Ww],
    samples(d) {
      const per = (C / G) * Hh * Ww;
      const stats = new Map();
      const groupStats = (g) => {
        if (!stats.has(g)) {
          let s = 0;
          let s2 = 0;
          for (let i = g * per; i < (g + 1) * per; i++) s += d.x[i];
          const mean = s / per;
          for (let i = g * per; i < (g + 1) * per; i++) s2 += (d.x[i] - mean) ** 2;
          stats.set(g, { mean, rstd: 1 / Math.sqrt(s2 / per + eps) });
        }
        return stats.get(g);
      };
      const pts = [[0, 0, 0], [C - 1, Hh - 1, Ww - 1], [C >> 1, 5, Ww - 2]];
      const r = randomArray(39, 97);
      for (let i = 0; i < 13; i++)
        pts.push([Math.floor(((r[3 * i] + 1) / 2) * C), Math.floor(((r[3 * i + 1] + 1) / 2) * Hh), Math.floor(((r[3 * i + 2] + 1) / 2) * Ww)]);
      return pts.map(([c, y, x]) => {
        const { mean, rstd } = groupStats(Math.floor(c / (C / G)));
        const a = (d.x[(c * Hh + y) * Ww + x] - mean) * rstd * d.gamma[c] + d.beta[c];
        return { idx: [c, y, x], ref: a / (1 + Math.exp(-a)) };
      });
    },
  };
}

export const OPS = [
  linearOp(729, 1152, 1152),
  linearOp(729, 1152, 4304),
  attentionOp(16, 729, 72),
  conv3x3Op(512, 512, 48, 48),
  conv3x3Op(128, 128, 192, 192),
  groupNormSiluOp(512, 32, 96, 96),
];

/** Index accessors for outputs in the PyTorch (ONNX) layout. */
export function nchwAt(out, dims) {
  const [, C, H, W] = dims;
  return (c, y, x) => out[(c * H + y) * W + x];
}
export function accessor(op, out) {
  if (op.kind === 'linear') return (i, j) => out[i * op.shape.N + j];
  if (op.kind === 'attention') {
    const { tokens: L, head_dim: D } = op.shape;
    return (h, i, e) => out[(h * L + i) * D + e];
  }
  return nchwAt(out, op.outputDims);
}
export { prod };
