// `dualtoken convert`: checkpoints of every supported layout -> one safetensors file, written
// streaming; dtype conversions bit-exact; failures leave nothing behind; memory stays bounded.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { halfToFloat, floatToBf16Bits } from '../src/core/dtype.js';
import { floatToHalfBits } from '../src/core/half.js';
import { encodeSafetensors, openSafetensors, type TensorToWrite } from '../src/core/safetensors.js';
import type { TensorInfo, TensorSource } from '../src/core/tensor-source.js';
import { convertCommand, convertSource, convertWeights } from '../src/node/convert.js';
import { FileReader } from '../src/node/file.js';
import { fillF32, valueAt, writeSyntheticCheckpoint, type SyntheticTensor } from './helpers/synthetic-checkpoint.js';
import { listZip } from './helpers/zip.js';

const fixture = (path: string) => fileURLToPath(new URL(`./fixtures/golden/${path}`, import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'convert-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
const tmpFile = (name: string) => join(tmp, `${counter++}-${name}`);

// --- an independent, strict safetensors parser to check the output with

interface SafeTensor {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

function readSafetensors(path: string): { tensors: Map<string, SafeTensor>; order: string[]; metadata?: Record<string, string> } {
  const file = new Uint8Array(readFileSync(path));
  const headerLength = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  expect(headerLength % 8).toBe(0);
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + headerLength)));
  const base = 8 + headerLength;
  const tensors = new Map<string, SafeTensor>();
  const order: string[] = [];
  let expectedBegin = 0;
  const byOffset = Object.entries<{ dtype: string; shape: number[]; data_offsets: [number, number] }>(header)
    .filter(([name]) => name !== '__metadata__')
    .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  for (const [name, t] of byOffset) {
    expect(t.data_offsets[0], `${name} starts where the previous tensor ended`).toBe(expectedBegin);
    expectedBegin = t.data_offsets[1];
    order.push(name);
    tensors.set(name, { dtype: t.dtype, shape: t.shape, data: file.subarray(base + t.data_offsets[0], base + t.data_offsets[1]) });
  }
  expect(base + expectedBegin, 'the data section ends at the end of the file').toBe(file.byteLength);
  return { tensors, order, metadata: header.__metadata__ };
}

const u16 = (b: Uint8Array) => new Uint16Array(b.slice().buffer);
const f32 = (b: Uint8Array) => new Float32Array(b.slice().buffer);

function writeSafetensorsFile(path: string, tensors: Record<string, TensorToWrite>): string {
  writeFileSync(path, encodeSafetensors(tensors));
  return path;
}

describe('golden checkpoints', () => {
  it('tiny/checkpoint.pt -> f32 safetensors: every tensor byte-identical to model.safetensors', async () => {
    const out = tmpFile('tiny.safetensors');
    const summary = await convertWeights(fixture('tiny/checkpoint.pt'), out, { dtype: 'f32' });
    const got = readSafetensors(out);
    const want = readSafetensors(fixture('tiny/model.safetensors')).tensors;
    expect([...got.tensors.keys()].sort()).toEqual([...want.keys()].sort());
    expect(got.order, 'names sorted, data in the same order').toEqual([...got.order].sort());
    for (const [name, w] of want) {
      const g = got.tensors.get(name)!;
      expect([name, g.dtype, g.shape]).toEqual([name, w.dtype, w.shape]);
      expect(Buffer.compare(g.data, w.data), name).toBe(0);
    }
    expect(got.metadata).toEqual({ format: 'pt' });
    expect(summary).toEqual({ tensors: want.size, bytesIn: summary.bytesIn, bytesOut: statSync(out).size, skipped: [] });
    expect(summary.bytesIn).toBe([...want.values()].reduce((s, t) => s + t.data.byteLength, 0));
    expect(existsSync(`${out}.tmp`)).toBe(false);
    // The output is also what the engine's own reader accepts.
    const st = await openSafetensors(await FileReader.open(out));
    expect(st.names().length).toBe(want.size);
    await st.close?.();
  });

  it('tiny-bf16/checkpoint.pt keeps its BF16 bytes (no dtype, and --dtype bf16)', async () => {
    const want = readSafetensors(fixture('tiny-bf16/model.safetensors')).tensors;
    for (const dtype of [undefined, 'bf16'] as const) {
      const out = tmpFile('tiny-bf16.safetensors');
      await convertWeights(fixture('tiny-bf16/checkpoint.pt'), out, { dtype });
      const got = readSafetensors(out).tensors;
      expect(got.size).toBe(want.size);
      for (const [name, w] of want) {
        const g = got.get(name)!;
        expect([name, g.dtype, g.shape]).toEqual([name, 'BF16', w.shape]);
        expect(Buffer.compare(g.data, w.data), name).toBe(0);
      }
    }
  });

  it('tiny-bf16 -> f32 widens exactly (bits << 16)', async () => {
    const out = tmpFile('tiny-bf16-f32.safetensors');
    await convertWeights(fixture('tiny-bf16/checkpoint.pt'), out, { dtype: 'f32' });
    const got = readSafetensors(out).tensors;
    for (const [name, w] of readSafetensors(fixture('tiny-bf16/model.safetensors')).tensors) {
      const g = got.get(name)!;
      expect(g.dtype).toBe('F32');
      const bits = new Uint32Array(g.data.slice().buffer);
      const src = u16(w.data);
      expect(bits.every((b, i) => b === src[i] << 16 >>> 0), name).toBe(true);
    }
  });
});

describe('dtype conversion', () => {
  it('f32 -> bf16 equals floatToBf16Bits of every value', async () => {
    const out = tmpFile('tiny-bf16-from-f32.safetensors');
    await convertWeights(fixture('tiny/model.safetensors'), out, { dtype: 'bf16' });
    const got = readSafetensors(out).tensors;
    let values = 0;
    for (const [name, w] of readSafetensors(fixture('tiny/model.safetensors')).tensors) {
      const g = got.get(name)!;
      expect([name, g.dtype, g.shape]).toEqual([name, 'BF16', w.shape]);
      const src = f32(w.data);
      const bits = u16(g.data);
      for (let i = 0; i < src.length; i++) {
        if (bits[i] !== floatToBf16Bits(src[i])) expect([name, i, bits[i]]).toEqual([name, i, floatToBf16Bits(src[i])]);
      }
      values += src.length;
    }
    expect(values).toBeGreaterThan(900_000);
  });

  // value -> half bits, computed by hand
  const HALF_CASES: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.1, 0x2e66],
    [65504, 0x7bff], // largest half
    [65519, 0x7bff], // below the midpoint to 65536: rounds down
    [65520, 0x7c00], // the midpoint: ties to even = inf
    [-65520, 0xfc00],
    [1e6, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [NaN, 0x7e00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -14 - 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // half of it: tie to even (0)
    [3 * 2 ** -26, 0x0001], // 0.75 of it: rounds up
    [3 * 2 ** -25, 0x0002], // 1.5 ulp: tie to even (2)
    [1e-5, 0x00a8], // 167.77 ulp -> 168
    [1e-7, 0x0002], // 1.68 ulp -> 2
    [1e-8, 0x0000], // 0.17 ulp -> 0
    [-1e-8, 0x8000],
    [1 + 2 ** -11, 0x3c00], // tie between 0x3c00 and 0x3c01: even
    [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02: even
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just over the tie
    [2 ** -14 - 2 ** -25, 0x0400], // rounds up from the largest subnormal into the smallest normal
    [1.4e-45, 0x0000], // a float32 subnormal
  ];

  it('floatToHalfBits: hand-computed bits', () => {
    for (const [x, bits] of HALF_CASES) expect([x, floatToHalfBits(x).toString(16)]).toEqual([x, bits.toString(16)]);
  });

  it('floatToHalfBits: every half round-trips, and random floats match a nearest-half search', () => {
    const finite: number[] = [];
    for (let h = 0; h < 0x7c00; h++) {
      expect(floatToHalfBits(halfToFloat(h))).toBe(h);
      expect(floatToHalfBits(halfToFloat(h | 0x8000))).toBe(h | 0x8000);
      finite.push(halfToFloat(h));
    }
    // Reference: the nearest of all finite halves by binary search; ties to the even one;
    // at or past 65520 (the midpoint from 65504 to the next exponent) infinity.
    const reference = (x: number): number => {
      const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
      const a = Math.abs(x);
      if (a >= 65520) return sign | 0x7c00;
      let lo = 0;
      let hi = finite.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (finite[mid] <= a) lo = mid;
        else hi = mid;
      }
      const dLo = a - finite[lo];
      const dHi = finite[hi] - a;
      const h = dLo < dHi ? lo : dHi < dLo ? hi : lo % 2 === 0 ? lo : hi;
      return sign | h;
    };
    const scratch = new Float32Array(1);
    const bits = new Uint32Array(scratch.buffer);
    let seed = 12345;
    for (let i = 0; i < 200_000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      // exponents from far below the subnormals to above the overflow
      bits[0] = (((seed >>> 8) % (0x4800_0000 - 0x3000_0000)) + 0x3000_0000 + (i & 1 ? 0x8000_0000 : 0)) >>> 0;
      const x = scratch[0];
      if (floatToHalfBits(x) !== reference(x)) expect([x, floatToHalfBits(x)]).toEqual([x, reference(x)]);
    }
  });

  it('f32 -> f16 and f32 -> bf16 of special values, via files; integers are kept; f16 -> f32 is exact', async () => {
    const xs = HALF_CASES.map(([x]) => x);
    const input = writeSafetensorsFile(tmpFile('special.safetensors'), {
      x: { dtype: 'F32', shape: [xs.length], data: new Float32Array(xs) },
      ids: { dtype: 'I64', shape: [3], data: new Uint8Array(new BigInt64Array([1n, -2n, 1n << 40n]).buffer) },
      n: { dtype: 'I32', shape: [2], data: new Int32Array([7, -7]) },
      empty: { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
    });
    const toF16 = tmpFile('special-f16.safetensors');
    await convertWeights(input, toF16, { dtype: 'f16' });
    const half = readSafetensors(toF16).tensors;
    expect(half.get('x')!.dtype).toBe('F16');
    expect([...u16(half.get('x')!.data)].map((b) => b.toString(16))).toEqual(HALF_CASES.map(([, b]) => b.toString(16)));
    expect(half.get('ids')).toMatchObject({ dtype: 'I64', shape: [3] });
    expect([...new BigInt64Array(half.get('ids')!.data.slice().buffer)]).toEqual([1n, -2n, 1n << 40n]);
    expect(half.get('n')).toMatchObject({ dtype: 'I32', shape: [2] });
    expect(half.get('empty')).toMatchObject({ dtype: 'F16', shape: [0, 3] });

    const toBf16 = tmpFile('special-bf16.safetensors');
    await convertWeights(input, toBf16, { dtype: 'bf16' });
    expect([...u16(readSafetensors(toBf16).tensors.get('x')!.data)]).toEqual(xs.map((x) => floatToBf16Bits(x)));

    // f16 -> f32 is exact; f16 -> bf16 rounds the exact value.
    const back = tmpFile('special-f16-f32.safetensors');
    await convertWeights(toF16, back, { dtype: 'f32' });
    const halves = u16(half.get('x')!.data);
    const widened = f32(readSafetensors(back).tensors.get('x')!.data);
    expect([...widened]).toEqual([...halves].map((h) => halfToFloat(h)));
    const hb = tmpFile('special-f16-bf16.safetensors');
    await convertWeights(toF16, hb, { dtype: 'bf16' });
    expect([...u16(readSafetensors(hb).tensors.get('x')!.data)]).toEqual([...halves].map((h) => floatToBf16Bits(halfToFloat(h))));
  });

  it('a tensor of more than one conversion chunk (1 Mi elements) converts in full', async () => {
    const n = (1 << 20) * 2 + 3;
    const data = new Float32Array(n);
    fillF32(7)(new Uint8Array(data.buffer));
    const input = writeSafetensorsFile(tmpFile('big.safetensors'), { w: { dtype: 'F32', shape: [n], data } });
    const out = tmpFile('big-f16.safetensors');
    await convertWeights(input, out, { dtype: 'f16' });
    const got = u16(readSafetensors(out).tensors.get('w')!.data);
    expect(got.length).toBe(n);
    for (const i of [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, n - 2, n - 1]) expect([i, got[i]]).toEqual([i, floatToHalfBits(data[i])]);
    let mismatches = 0;
    for (let i = 0; i < n; i++) if (got[i] !== floatToHalfBits(data[i])) mismatches++;
    expect(mismatches).toBe(0);
  });
});

describe('what is kept', () => {
  it('dropTextTower removes exactly siglip_model.text_model.* (logit_scale / logit_bias kept)', async () => {
    const all = [...readSafetensors(fixture('tiny/model.safetensors')).tensors.keys()];
    const text = all.filter((n) => n.startsWith('siglip_model.text_model.'));
    expect(text.length).toBeGreaterThan(30);
    const out = tmpFile('no-text.safetensors');
    const summary = await convertWeights(fixture('tiny/checkpoint.pt'), out, { dropTextTower: true });
    expect(summary.skipped).toEqual([...text].sort());
    const got = [...readSafetensors(out).tensors.keys()].sort();
    expect(got).toEqual(all.filter((n) => !text.includes(n)).sort());
    expect(got).toContain('siglip_model.logit_scale');
    expect(got).toContain('siglip_model.logit_bias');
    expect(got).toContain('siglip_model.vision_model.post_layernorm.weight');
    expect(summary.tensors).toBe(all.length - text.length);
  });

  it('EMA buffers are kept by default and dropped by dropEma', async () => {
    const all = [...readSafetensors(fixture('tiny/model.safetensors')).tensors.keys()];
    const ema = all.filter((n) => /\.(cluster_size_ema|embed_ema)$/.test(n));
    expect(ema).toHaveLength(16);
    const out = tmpFile('no-ema.safetensors');
    const summary = await convertWeights(fixture('tiny/model.safetensors'), out, { dropEma: true });
    expect(summary.skipped).toEqual([...ema].sort());
    expect([...readSafetensors(out).tensors.keys()].sort()).toEqual(all.filter((n) => !ema.includes(n)).sort());
  });
});

describe('sharded input', () => {
  it('two shards + index.json -> one file equal to model.safetensors', async () => {
    const dir = mkdtempSync(join(tmp, 'shards-'));
    const want = readSafetensors(fixture('tiny/model.safetensors')).tensors;
    const names = [...want.keys()];
    const shards: Record<string, TensorToWrite>[] = [{}, {}];
    const weightMap: Record<string, string> = {};
    names.forEach((name, i) => {
      const k = i % 3 === 0 ? 0 : 1; // interleaved, so the merged order differs from each shard's
      const t = want.get(name)!;
      shards[k][name] = { dtype: t.dtype as TensorToWrite['dtype'], shape: t.shape, data: t.data };
      weightMap[name] = `model-0000${k + 1}-of-00002.safetensors`;
    });
    shards.forEach((s, k) => writeFileSync(join(dir, `model-0000${k + 1}-of-00002.safetensors`), encodeSafetensors(s)));
    const index = join(dir, 'model.safetensors.index.json');
    writeFileSync(index, JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    const out = join(dir, 'merged.safetensors');
    const summary = await convertWeights(index, out);
    expect(summary.tensors).toBe(want.size);
    const got = readSafetensors(out).tensors;
    for (const [name, w] of want) expect(Buffer.compare(got.get(name)!.data, w.data), name).toBe(0);

    // An index that lists a tensor its shard lacks, or a shard outside the folder, is refused.
    const bad = join(dir, 'bad.index.json');
    writeFileSync(bad, JSON.stringify({ weight_map: { ...weightMap, 'extra.weight': 'model-00001-of-00002.safetensors' } }));
    await expect(convertWeights(bad, join(dir, 'x.safetensors'))).rejects.toThrow(/bad\.index\.json: tensor 'extra\.weight' is listed in model-00001-of-00002\.safetensors but not found there/);
    writeFileSync(bad, JSON.stringify({ weight_map: { a: '../model.safetensors' } }));
    await expect(convertWeights(bad, join(dir, 'x.safetensors'))).rejects.toThrow(/not a file name beside the index/);
    expect(existsSync(join(dir, 'x.safetensors'))).toBe(false);
    expect(existsSync(join(dir, 'x.safetensors.tmp'))).toBe(false);
  });
});

describe('broken inputs', () => {
  const golden = () => new Uint8Array(readFileSync(fixture('tiny/checkpoint.pt')));
  const noOutput = (out: string) => {
    expect(existsSync(out), out).toBe(false);
    expect(existsSync(`${out}.tmp`), `${out}.tmp`).toBe(false);
  };

  it('a truncated .pt is named in the error and leaves no output', async () => {
    const input = tmpFile('truncated.pt');
    const bytes = golden();
    writeFileSync(input, bytes.subarray(0, bytes.length >> 1));
    const out = tmpFile('out.safetensors');
    await expect(convertWeights(input, out)).rejects.toThrow(new RegExp(`${input.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: truncated checkpoint`));
    noOutput(out);
  });

  it('a truncated or corrupted safetensors file is named in the error and leaves no output', async () => {
    const bytes = new Uint8Array(readFileSync(fixture('tiny/model.safetensors')));
    const truncated = tmpFile('truncated.safetensors');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 1000));
    const out = tmpFile('out.safetensors');
    await expect(convertWeights(truncated, out)).rejects.toThrow(/truncated\.safetensors: tensor '.*': data ends at byte \d+ but the file has \d+ bytes \(truncated file\)/);
    noOutput(out);
    const corrupted = tmpFile('corrupted.safetensors');
    const c = bytes.slice();
    c[9] = 0x7b; // '{' inside the JSON header
    c[10] = 0x7b;
    writeFileSync(corrupted, c);
    await expect(convertWeights(corrupted, out)).rejects.toThrow(/corrupted\.safetensors: header is not valid JSON/);
    noOutput(out);
  });

  it('a failure half-way through removes OUT.tmp and leaves an existing OUT as it was', async () => {
    // Corrupt the local header of a storage entry that comes late in the zip: opening succeeds
    // (the central directory is intact) and the error comes when that tensor is read.
    const bytes = golden();
    const entry = listZip(bytes).find((e) => e.name === 'checkpoint/data/300')!;
    const dv = new DataView(bytes.buffer);
    let local = entry.dataStart - 30;
    while (local > 0 && !(dv.getUint32(local, true) === 0x04034b50 && local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true) === entry.dataStart)) local--;
    expect(local).toBeGreaterThan(0);
    const broken = bytes.slice();
    broken.fill(0, local, local + 4);
    const input = tmpFile('corrupt-local.pt');
    writeFileSync(input, broken);
    const out = tmpFile('existing.safetensors');
    writeFileSync(out, 'previous contents');
    let progressed = 0;
    await expect(convertWeights(input, out, { onProgress: (done) => (progressed = done) })).rejects.toThrow(
      /corrupt-local\.pt: zip entry 'checkpoint\/data\/300' has no local header at byte \d+ \(corrupt file\)/,
    );
    expect(progressed, 'some tensors were written before the failure').toBeGreaterThan(0);
    expect(readFileSync(out, 'utf8')).toBe('previous contents');
    expect(existsSync(`${out}.tmp`)).toBe(false);
  });

  it('a source that returns the wrong number of bytes is refused, naming the tensor', async () => {
    const info: TensorInfo = { name: 'w', dtype: 'F32', shape: [4], byteLength: 16 };
    const source: TensorSource = { label: 'liar.safetensors', names: () => ['w'], info: () => info, read: async () => new Uint8Array(12) };
    const out = tmpFile('liar-out.safetensors');
    await expect(convertSource(source, out, { dtype: 'bf16' })).rejects.toThrow(/liar\.safetensors: tensor 'w' read 12 bytes, its F32 x \[4\] needs 16/);
    noOutput(out);
  });

  it('a missing input is named', async () => {
    const out = tmpFile('out.safetensors');
    await expect(convertWeights(join(tmp, 'nope.pt'), out)).rejects.toThrow(/nope\.pt: cannot open \(ENOENT\)/);
    noOutput(out);
  });
});

describe('convertCommand', () => {
  afterEach(() => vi.restoreAllMocks());
  const captureStderr = () => {
    const lines: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    return lines;
  };

  it('converts with --dtype and --drop-text-tower, printing ~10% progress lines when stderr is not a TTY', async () => {
    const out = tmpFile('cli.safetensors');
    const isTTY = process.stderr.isTTY;
    Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
    const lines = captureStderr();
    try {
      await convertCommand([fixture('tiny/checkpoint.pt')], new Map([['out', out], ['dtype', 'bf16']]), new Set(['drop-text-tower']));
    } finally {
      Object.defineProperty(process.stderr, 'isTTY', { value: isTTY, configurable: true });
    }
    const got = readSafetensors(out).tensors;
    expect([...got.values()].every((t) => t.dtype === 'BF16')).toBe(true);
    expect([...got.keys()].some((n) => n.includes('text_model'))).toBe(false);
    const progress = lines.filter((l) => l.startsWith('convert: '));
    expect(progress.length).toBeGreaterThanOrEqual(5);
    expect(progress.length).toBeLessThanOrEqual(11);
    expect(progress[progress.length - 1]).toMatch(/^convert: 100% \([\d.]+ MB\/[\d.]+ MB\) \d+\/\d+ tensors\n$/);
    expect(lines[lines.length - 1]).toMatch(/^converted .*checkpoint\.pt -> .*cli\.safetensors: \d+ tensors, .* read, .* written, skipped 38\n$/);
  });

  it('draws a bar on a TTY; --quiet prints nothing', async () => {
    const isTTY = process.stderr.isTTY;
    Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
    let lines = captureStderr();
    try {
      await convertCommand([fixture('tiny-bf16/checkpoint.pt')], new Map([['out', tmpFile('bar.safetensors')]]), new Set());
    } finally {
      Object.defineProperty(process.stderr, 'isTTY', { value: isTTY, configurable: true });
    }
    expect(lines.some((l) => /^\rconvert \[#{24}\] [\d.]+ MB\/[\d.]+ MB \d+\/\d+ tensors/.test(l))).toBe(true);
    vi.restoreAllMocks();
    lines = captureStderr();
    await convertCommand([fixture('tiny-bf16/checkpoint.pt')], new Map([['out', tmpFile('quiet.safetensors')]]), new Set(['quiet']));
    expect(lines).toEqual([]);
  });

  it('refuses bad arguments', async () => {
    const input = fixture('tiny/checkpoint.pt');
    await expect(convertCommand([], new Map([['out', 'x.safetensors']]), new Set())).rejects.toThrow(/'convert' takes one input/);
    await expect(convertCommand([input], new Map(), new Set())).rejects.toThrow(/'convert' needs --out/);
    await expect(convertCommand([input], new Map([['out', 'x.pt']]), new Set())).rejects.toThrow(/x\.pt: the output must be a \.safetensors file/);
    await expect(convertCommand([input], new Map([['out', 'x.safetensors'], ['dtype', 'f64']]), new Set())).rejects.toThrow(/--dtype f64: use f32, f16 or bf16/);
  });
});

// ---------------------------------------------------------------------------------------------
// Memory: a ~1 GB checkpoint converted in a child process (the bundled converter alone, so the
// figure is the conversion's, not vitest's), peak RSS far below the file size.

const execFileP = promisify(execFile);
const GB_TENSORS = 16;
const GB_ELEMENTS = 16 * 1024 * 1024; // 64 MiB of f32 each

describe('memory', () => {
  it(
    'a ~1 GB .pt converts to bf16 with peak RSS well below the file size',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'convert-1gb-'));
      try {
        const t0 = performance.now();
        const tensors: SyntheticTensor[] = Array.from({ length: GB_TENSORS }, (_, i) => ({
          name: `layers.${i}.weight`,
          dtype: 'F32',
          shape: [4096, GB_ELEMENTS / 4096],
          fill: fillF32(i + 1),
        }));
        const input = join(dir, 'big.pt');
        const size = await writeSyntheticCheckpoint(input, tensors);
        const tWrite = performance.now() - t0;

        // Bundle the converter (Node built-ins stay external) and run it alone in a child process.
        const { build } = await import('esbuild');
        const bundle = join(dir, 'convert.mjs');
        await build({
          entryPoints: [fileURLToPath(new URL('../src/node/convert.ts', import.meta.url))],
          bundle: true,
          platform: 'node',
          format: 'esm',
          outfile: bundle,
          logLevel: 'error',
        });
        const child = join(dir, 'child.mjs');
        writeFileSync(
          child,
          `import { convertWeights } from './convert.mjs';
const baseline = process.memoryUsage().rss;
let sampled = baseline;
const timer = setInterval(() => { sampled = Math.max(sampled, process.memoryUsage().rss); }, 10);
const t0 = performance.now();
const summary = await convertWeights(process.argv[2], process.argv[3], { dtype: 'bf16' });
const ms = performance.now() - t0;
clearInterval(timer);
console.log(JSON.stringify({ tensors: summary.tensors, bytesIn: summary.bytesIn, bytesOut: summary.bytesOut, ms, baseline, sampled, maxRssKb: process.resourceUsage().maxRSS }));
`,
        );
        const out = join(dir, 'big.safetensors');
        const { stdout } = await execFileP(process.execPath, [child, input, out], { maxBuffer: 1 << 20 });
        const r = JSON.parse(stdout.trim()) as { tensors: number; bytesIn: number; bytesOut: number; ms: number; baseline: number; sampled: number; maxRssKb: number };
        const peak = r.maxRssKb * 1024;
        console.log(
          `1 GB conversion: input ${(size / 2 ** 20).toFixed(0)} MiB .pt (written in ${(tWrite / 1000).toFixed(1)} s) -> ` +
            `${(r.bytesOut / 2 ** 20).toFixed(0)} MiB bf16 safetensors in ${(r.ms / 1000).toFixed(1)} s; child peak RSS ` +
            `${(peak / 2 ** 20).toFixed(0)} MiB (baseline ${(r.baseline / 2 ** 20).toFixed(0)} MiB, sampled peak ${(r.sampled / 2 ** 20).toFixed(0)} MiB)`,
        );
        expect(size).toBeGreaterThan(2 ** 30);
        expect(r.tensors).toBe(GB_TENSORS);
        expect(r.bytesIn).toBe(GB_TENSORS * GB_ELEMENTS * 4);
        expect(statSync(out).size).toBe(r.bytesOut);
        expect(peak).toBeLessThan(400 * 2 ** 20);

        // Spot checks of the output, read lazily.
        const st = await openSafetensors(await FileReader.open(out));
        try {
          expect(st.names().sort()).toEqual(tensors.map((t) => t.name).sort());
          for (const i of [0, 7, 15]) {
            const info = st.info(`layers.${i}.weight`)!;
            expect([info.dtype, info.shape]).toEqual(['BF16', [4096, 4096]]);
            const head = u16((await st.read(`layers.${i}.weight`)).subarray(0, 8));
            for (let k = 0; k < 4; k++) expect(head[k]).toBe(floatToBf16Bits(valueAt(i + 1, k)));
          }
        } finally {
          await st.close?.();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    180_000,
  );
});
