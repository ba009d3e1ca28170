// The safetensors reader: valid files round-trip; every malformed header is refused with an
// error naming the file and the tensor.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryReader } from '../src/core/bytes.js';
import { floatToBf16Bits, toFloat32, toInt32 } from '../src/core/dtype.js';
import { encodeSafetensors, openSafetensors } from '../src/core/safetensors.js';
import { FileReader } from '../src/node/file.js';
import { openSafetensorsFile } from '../src/node/files.js';
import { caseDir } from './helpers/golden.js';

function fileWithHeader(header: unknown, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

const open = (bytes: Uint8Array, label = 'bad.safetensors') => openSafetensors(new MemoryReader(bytes, label));

describe('safetensors reader', () => {
  it('round-trips F32, F16, BF16, I32 and I64 tensors', async () => {
    const f32 = Float32Array.from([1.5, -2, 3.25]);
    // 1 + 2^-8 is a tie and rounds to even (1); 1 + 3 * 2^-9 rounds up to 1 + 2^-7.
    const bf16 = Uint16Array.from([1, -0.5, 1 + 2 ** -8, 1 + 3 * 2 ** -9].map(floatToBf16Bits));
    const f16 = Uint16Array.from([0x3c00, 0xc000, 0x0001]); // 1, -2, smallest subnormal
    const i64 = new BigInt64Array([5n, -7n]);
    const bytes = encodeSafetensors({
      a: { dtype: 'F32', shape: [3], data: f32 },
      b: { dtype: 'BF16', shape: [4, 1], data: bf16 },
      c: { dtype: 'F16', shape: [3], data: f16 },
      d: { dtype: 'I32', shape: [2], data: Int32Array.from([4, -9]) },
      e: { dtype: 'I64', shape: [2], data: new Uint8Array(i64.buffer) },
    });
    const st = await open(bytes, 'ok.safetensors');
    expect(st.names().sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(Array.from(toFloat32(await st.read('a'), 'F32', 'a'))).toEqual([1.5, -2, 3.25]);
    expect(Array.from(toFloat32(await st.read('b'), 'BF16', 'b'))).toEqual([1, -0.5, 1, 1 + 2 ** -7]);
    expect(Array.from(toFloat32(await st.read('c'), 'F16', 'c'))).toEqual([1, -2, 2 ** -24]);
    expect(Array.from(toInt32(await st.read('d'), 'I32', 'd'))).toEqual([4, -9]);
    expect(Array.from(toInt32(await st.read('e'), 'I64', 'e'))).toEqual([5, -7]);
    expect(st.info('b')).toEqual({ name: 'b', dtype: 'BF16', shape: [4, 1], byteLength: 8 });
  });

  it('reads the golden model lazily from disk, only the ranges asked for', async () => {
    const path = join(caseDir('tiny-bf16'), 'model.safetensors');
    const reader = await FileReader.open(path);
    let bytesRead = 0;
    const counting = { label: reader.label, size: reader.size, read: (o: number, n: number) => ((bytesRead += n), reader.read(o, n)) };
    const st = await openSafetensors(counting);
    const name = 'siglip_model.vision_model.post_layernorm.weight';
    expect(st.info(name)).toMatchObject({ dtype: 'BF16', shape: [64] });
    await st.read(name);
    expect(bytesRead).toBeLessThan(reader.size / 20);
    await reader.close();
  });

  const header = (entry: Record<string, unknown>) => ({ 'w.weight': { dtype: 'F32', shape: [2], data_offsets: [0, 8], ...entry } });
  const cases: [string, Uint8Array, RegExp][] = [
    ['a file shorter than 8 bytes', new Uint8Array(5), /bad\.safetensors: not a safetensors file \(5 bytes/],
    ['a header length past the end', fileWithHeader(header({}), 8).subarray(0, 20), /bad\.safetensors: header length \d+ runs past the end/],
    ['a header that is not JSON', (() => { const b = fileWithHeader({}, 0); b[8] = 0x7b; b[9] = 0x78; return b; })(), /bad\.safetensors: header is not valid JSON/],
    ['an unknown dtype', fileWithHeader(header({ dtype: 'F8_E4M3' }), 8), /bad\.safetensors: tensor 'w\.weight': unsupported dtype "F8_E4M3"/],
    ['a size that does not match dtype x shape', fileWithHeader(header({ shape: [3] }), 8), /tensor 'w\.weight': data_offsets span 8 bytes but F32 x \[3\] needs 12/],
    ['data past the end of the file (truncated)', fileWithHeader(header({}), 4), /tensor 'w\.weight': data ends at byte \d+ but the file has \d+ bytes \(truncated file\)/],
    ['bad offsets', fileWithHeader(header({ data_offsets: [8, 0] }), 8), /tensor 'w\.weight': bad data_offsets/],
    [
      'overlapping tensors',
      fileWithHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12),
      /tensors 'a' and 'b' overlap/,
    ],
  ];
  for (const [what, bytes, message] of cases) {
    it(`refuses ${what}`, async () => {
      await expect(open(bytes)).rejects.toThrow(message);
    });
  }

  it('names the file and tensor for a missing tensor', async () => {
    const st = await open(encodeSafetensors({ a: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }), 'm.safetensors');
    await expect(st.read('nope')).rejects.toThrow("m.safetensors: missing tensor 'nope'");
  });

  it('names a truncated file on disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'st-'));
    const full = readFileSync(join(caseDir('tiny'), 'model.safetensors'));
    const path = join(dir, 'cut.safetensors');
    writeFileSync(path, full.subarray(0, full.length - 1000));
    await expect(openSafetensorsFile(path)).rejects.toThrow(new RegExp(`${path}: tensor '.*': data ends at byte \\d+ but the file has \\d+ bytes \\(truncated file\\)`));
    await expect(openSafetensorsFile(join(dir, 'absent.safetensors'))).rejects.toThrow(/absent\.safetensors: cannot open \(ENOENT\)/);
  });
});
