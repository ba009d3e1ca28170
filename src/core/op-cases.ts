// Op cases: an op at one shape with seeded inputs, recorded with whichever variant the library's
// choice gives, its output checked on sampled positions against a float64 CPU reference. The
// autotuner (autotune.ts) measures each op's variants on small ones; the kernel benchmark
// (bench/kernels.ts) on the real sizes.
import { conv2d, groupNorm } from './conv-ops.js';
import type { Gpu } from './gpu.js';
import { attention, heads, linear } from './ops.js';
import type { Program } from './program.js';
import { rqSearch, searchCodebookData } from './quant-ops.js';
import { seeded } from './random.js';
import { Tensor } from './tensor.js';
import type { OpName } from './variants.js';

/** An op at one shape: uploads its inputs, records it, checks sampled outputs. */
export interface OpCase {
  /** The op (variants.ts) whose variants the case measures. */
  op: OpName;
  /** e.g. 'linear 729x1152 -> 1152'. */
  title: string;
  /** Shape class (variants.shapeClass) the case stands for. */
  cls: string;
  unit: 'GFLOP/s' | 'GB/s';
  /** FLOPs (or bytes for GB/s) of one run. */
  work: number;
  prepare(gpu: Gpu): PreparedCase;
}

export interface PreparedCase {
  /** Records the op into `prog` with whatever variant the library's choice gives; returns its output. */
  record(prog: Program): Tensor;
  /** Worst sampled error relative to the largest sampled reference value, and the sample count. */
  check(out: Float32Array): { err: number; samples: number };
  destroy(): void;
}

/** `count` distinct-ish sample positions in [0, n), always including the first and last. */
function samplePositions(n: number, count: number, seed: number): number[] {
  const r = seeded(count, seed);
  const out = [0, n - 1];
  for (let i = 0; out.length < Math.min(count, n); i++) out.push(Math.floor(((r[i % count] + 1) / 2) * n) % n);
  return out;
}

function upload(gpu: Gpu, shape: number[], data: Float32Array, label: string): Tensor {
  const buffer = gpu.device.createBuffer({ label, size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  gpu.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  const t = new Tensor(buffer, shape, 'f32', 0, label);
  t.pinned = true;
  return t;
}

/** Compares sampled outputs with their float64 references. */
function compare(out: Float32Array, positions: number[], ref: (i: number) => number): { err: number; samples: number } {
  let worst = 0;
  let scale = 0;
  for (const i of positions) {
    const r = ref(i);
    scale = Math.max(scale, Math.abs(r));
    const d = Math.abs(out[i] - r);
    worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
  }
  return { err: worst / (scale || 1), samples: positions.length };
}

function geluTanh(v: number): number {
  return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
}

/** torch.nn.Linear [+ GELU tanh] on x [M, K], w [N, K], bias [N]. */
export function linearCase(M: number, K: number, N: number, opts: { gelu?: boolean; samples?: number; title?: string } = {}): OpCase {
  return {
    op: 'linear',
    title: opts.title ?? `linear ${M}x${K} -> ${N}${opts.gelu ? ' +GELU' : ''}`,
    cls: M >= 64 ? 'rows>=64' : 'rows<64',
    unit: 'GFLOP/s',
    work: 2 * M * N * K,
    prepare(gpu) {
      const x = seeded(M * K, 11 + K);
      const w = seeded(N * K, 13 + N, 1 / Math.sqrt(K));
      const b = seeded(N, 17, 0.1);
      const tx = upload(gpu, [M, K], x, 'x');
      const tw = upload(gpu, [N, K], w, 'w');
      const tb = upload(gpu, [N], b, 'bias');
      return {
        record: (prog) => linear(prog, tx, tw, { bias: tb, act: opts.gelu ? 'gelu_tanh' : 'none', label: 'y' }),
        check: (out) =>
          compare(out, samplePositions(M * N, opts.samples ?? 256, M + N), (i) => {
            const m = Math.floor(i / N);
            const n = i % N;
            let s = b[n];
            for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
            return opts.gelu ? geluTanh(s) : s;
          }),
        destroy: () => [tx, tw, tb].forEach((t) => t.buffer.destroy()),
      };
    },
  };
}

/** softmax(q k^T / sqrt(D)) v over H heads of L tokens (self-attention, q/k/v [1, L, H*D]); Lq < L uses the first Lq queries. */
export function attentionCase(H: number, L: number, D: number, opts: { Lq?: number; samples?: number; title?: string } = {}): OpCase {
  const Lq = opts.Lq ?? L;
  const W = H * D;
  return {
    op: 'attention',
    title: opts.title ?? `attention ${H} heads x ${Lq}${Lq !== L ? `/${L}` : ''} x ${D}`,
    cls: Lq >= 16 ? 'queries>=16' : 'queries<16',
    unit: 'GFLOP/s',
    work: 4 * H * Lq * L * D,
    prepare(gpu) {
      const q = seeded(Lq * W, 21, 1.5);
      const k = seeded(L * W, 22, 1.5);
      const v = seeded(L * W, 23);
      const tq = upload(gpu, [1, Lq, W], q, 'q');
      const tk = upload(gpu, [1, L, W], k, 'k');
      const tv = upload(gpu, [1, L, W], v, 'v');
      const rows = new Map<number, Float64Array>(); // (i * H + h) -> o[i, h, :]
      const row = (i: number, h: number): Float64Array => {
        let o = rows.get(i * H + h);
        if (o) return o;
        const s = new Float64Array(L);
        let mx = -Infinity;
        for (let j = 0; j < L; j++) {
          let d = 0;
          for (let e = 0; e < D; e++) d += q[i * W + h * D + e] * k[j * W + h * D + e];
          s[j] = d / Math.sqrt(D);
          mx = Math.max(mx, s[j]);
        }
        let sum = 0;
        for (let j = 0; j < L; j++) sum += s[j] = Math.exp(s[j] - mx);
        o = new Float64Array(D);
        for (let j = 0; j < L; j++) for (let e = 0; e < D; e++) o[e] += (s[j] / sum) * v[j * W + h * D + e];
        rows.set(i * H + h, o);
        return o;
      };
      // Whole rows of a few (query, head) pairs: each reference row costs L * D.
      const count = Math.max(1, Math.floor((opts.samples ?? 256) / D));
      const picks = samplePositions(Lq * H, count, 29);
      const positions = picks.flatMap((p) => Array.from({ length: D }, (_, e) => Math.floor(p / H) * W + (p % H) * D + e));
      return {
        record: (prog) => attention(prog, { B: 1, H, D, Lq, Lk: L, q: heads(tq), k: heads(tk), v: heads(tv), label: 'o' }),
        check: (out) => compare(out, positions, (idx) => row(Math.floor(idx / W), Math.floor((idx % W) / D))[idx % D]),
        destroy: () => [tq, tk, tv].forEach((t) => t.buffer.destroy()),
      };
    },
  };
}

/** torch.nn.Conv2d(Cin, Cout, k, padding k/2) with bias on one [1, Cin, H, W] image. */
export function conv2dCase(Cin: number, Cout: number, H: number, W: number, K: 1 | 3, opts: { samples?: number; title?: string } = {}): OpCase {
  const pad = (K - 1) / 2;
  return {
    op: 'conv2d',
    title: opts.title ?? `conv${K}x${K} ${Cin}->${Cout} @ ${H}x${W}`,
    cls: `k${K}`,
    unit: 'GFLOP/s',
    work: 2 * Cout * Cin * K * K * H * W,
    prepare(gpu) {
      const x = seeded(Cin * H * W, 31 + Cin);
      const w = seeded(Cout * Cin * K * K, 37 + Cout, 1 / Math.sqrt(Cin * K * K));
      const b = seeded(Cout, 41, 0.1);
      const tx = upload(gpu, [1, Cin, H, W], x, 'x');
      const tw = upload(gpu, [Cout, Cin, K, K], w, 'w');
      const tb = upload(gpu, [Cout], b, 'bias');
      return {
        record: (prog) => conv2d(prog, tx, tw, tb, { label: 'y' }),
        check: (out) =>
          compare(out, samplePositions(Cout * H * W, opts.samples ?? 256, Cout + H), (idx) => {
            const co = Math.floor(idx / (H * W));
            const oy = Math.floor(idx / W) % H;
            const ox = idx % W;
            let s = b[co];
            for (let ci = 0; ci < Cin; ci++)
              for (let ky = 0; ky < K; ky++) {
                const iy = oy + ky - pad;
                if (iy < 0 || iy >= H) continue;
                for (let kx = 0; kx < K; kx++) {
                  const ix = ox + kx - pad;
                  if (ix >= 0 && ix < W) s += x[(ci * H + iy) * W + ix] * w[((co * Cin + ci) * K + ky) * K + kx];
                }
              }
            return s;
          }),
        destroy: () => [tx, tw, tb].forEach((t) => t.buffer.destroy()),
      };
    },
  };
}

/** torch.nn.GroupNorm(32, C, eps=1e-6) + SiLU on one [1, C, H, W] image; work in bytes (one read, one write). */
export function groupNormCase(C: number, H: number, W: number, opts: { samples?: number; title?: string } = {}): OpCase {
  const G = 32;
  const HW = H * W;
  return {
    op: 'group_norm',
    title: opts.title ?? `GroupNorm+SiLU ${C}ch @ ${H}x${W}`,
    cls: 'all',
    unit: 'GB/s',
    work: 8 * C * HW,
    prepare(gpu) {
      // An offset per channel, so that the centred variance matters.
      const x = seeded(C * HW, 43 + C, 2).map((v, i) => v + 3 * Math.sin(Math.floor(i / HW)));
      const g = seeded(C, 47).map((v) => 1 + 0.2 * v);
      const b = seeded(C, 53, 0.2);
      const tx = upload(gpu, [1, C, H, W], x, 'x');
      const tg = upload(gpu, [C], g, 'gamma');
      const tb = upload(gpu, [C], b, 'beta');
      const S = (C / G) * HW;
      let stats: Float64Array | undefined;
      const groupStats = () => {
        if (stats) return stats;
        stats = new Float64Array(2 * G);
        for (let gi = 0; gi < G; gi++) {
          let sum = 0;
          for (let i = 0; i < S; i++) sum += x[gi * S + i];
          const mean = sum / S;
          let sq = 0;
          for (let i = 0; i < S; i++) sq += (x[gi * S + i] - mean) ** 2;
          stats[2 * gi] = mean;
          stats[2 * gi + 1] = 1 / Math.sqrt(sq / S + 1e-6);
        }
        return stats;
      };
      return {
        record: (prog) => groupNorm(prog, tx, tg, tb, 1e-6, { groups: G, silu: true, label: 'y' }),
        check: (out) =>
          compare(out, samplePositions(C * HW, opts.samples ?? 256, C + HW), (idx) => {
            const st = groupStats();
            const c = Math.floor(idx / HW);
            const gi = Math.floor(idx / S);
            const v = (x[idx] - st[2 * gi]) * st[2 * gi + 1] * g[c] + b[c];
            return v / (1 + Math.exp(-v));
          }),
        destroy: () => [tx, tg, tb].forEach((t) => t.buffer.destroy()),
      };
    },
  };
}

/**
 * The nearest-codeword search of the quantizers (quant-ops.rqSearch): T tokens of width E against
 * a K x E codebook, D depths; work in FLOPs of the distance dot products.
 */
export function rqSearchCase(T: number, K: number, E: number, D: number, opts: { tokens?: number } = {}): OpCase {
  return {
    op: 'rq_search',
    title: `rq_search ${T} tokens, ${K}x${E} codebook, depth ${D}`,
    cls: 'all',
    unit: 'GFLOP/s',
    work: 2 * T * D * K * Math.ceil(E / 4) * 4,
    prepare(gpu) {
      const x = seeded(T * E, 61, 0.5);
      const weight = seeded((K + 1) * E, 67, 0.25);
      const cb = searchCodebookData(weight, [K + 1, E]);
      const tx = upload(gpu, [T, E], x, 'x');
      const rows = upload(gpu, [K, cb.width], cb.rows, 'codebook');
      const normSq = upload(gpu, [K], cb.normSq, 'norms');
      return {
        record: (prog) => rqSearch(prog, tx, { rows, normSq }, D).codes,
        // Codes of sampled tokens against float64 exact distances, following the engine's codes:
        // the error is how much farther the chosen codeword is than the nearest, over the size of
        // the distance's terms (near ties at float32 rounding are accepted by the tolerance).
        check: (out) => {
          const codes = new Int32Array(out.buffer, out.byteOffset, T * D);
          let worst = 0;
          const n = opts.tokens ?? 8;
          const tokens = [0, T - 1, ...Array.from({ length: Math.max(0, n - 2) }, (_, i) => Math.floor(((i + 1) * T) / n))];
          const r = new Float64Array(E);
          for (const t of tokens) {
            for (let e = 0; e < E; e++) r[e] = x[t * E + e];
            for (let d = 0; d < D; d++) {
              let best = Infinity;
              let chosen = Infinity;
              const c = codes[t * D + d];
              if (!(c >= 0 && c < K)) return { err: Infinity, samples: tokens.length * D };
              for (let k = 0; k < K; k++) {
                let s = 0;
                for (let e = 0; e < E; e++) s += (r[e] - weight[k * E + e]) ** 2;
                if (s < best) best = s;
                if (k === c) chosen = s;
              }
              let scale = 0;
              for (let e = 0; e < E; e++) scale += r[e] * r[e] + weight[c * E + e] ** 2;
              worst = Math.max(worst, (chosen - best) / scale);
              for (let e = 0; e < E; e++) r[e] -= weight[c * E + e];
            }
          }
          return { err: worst, samples: tokens.length * D };
        },
        destroy: () => [tx, rows, normSq].forEach((t) => t.buffer.destroy()),
      };
    },
  };
}
