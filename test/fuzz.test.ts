// Seeded mutation fuzz of the readers that take bytes from outside: safetensors headers and data
// (openSafetensors), PNG and JPEG files (decodeImage), JSON codes files (parseCodes). Every mutated
// input either decodes or throws a plain Error whose message is one line starting with the file's
// label (control characters other than line breaks are left to the CLI's oneLine): never a
// TypeError / RangeError with an internal message, never a hang or a crash.
// Deterministic (fixed seeds), 200 cases per format, a few seconds in all.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { MemoryReader } from '../src/core/bytes.js';
import type { QuantizerConfig } from '../src/core/config.js';
import { crc32 } from '../src/core/image.js';
import { encodeSafetensors, openSafetensors } from '../src/core/safetensors.js';
import { parseCodes } from '../src/node/codes.js';
import { decodeImage } from '../src/node/decode.js';
import { caseDir } from './helpers/golden.js';

const CASES = 200;

/** xorshift32: the same cases on every run. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

/** One to four byte changes (set, flip, insert, delete) within `region` bytes of the start, or a truncation. */
function mutate(bytes: Uint8Array, rand: (n: number) => number, region = bytes.length): Uint8Array {
  let out = Uint8Array.from(bytes);
  const edits = 1 + rand(4);
  for (let e = 0; e < edits; e++) {
    const at = rand(Math.min(region, out.length) || 1);
    const interesting = [0x00, 0xff, 0x7f, 0x80, 0x0a, 0x1b, 0x22, 0x5c, 0x2d, 0x30, 0x39];
    const value = rand(2) ? interesting[rand(interesting.length)] : rand(256);
    switch (rand(5)) {
      case 0:
        out[at] = value;
        break;
      case 1:
        out[at] ^= 1 << rand(8);
        break;
      case 2:
        out = Uint8Array.from([...out.subarray(0, at), value, ...out.subarray(at)]);
        break;
      case 3:
        out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + 1)]);
        break;
      default:
        out = out.slice(0, at);
    }
  }
  return out;
}

/** The outcome the readers promise: success, or a plain one-line Error naming `label`. */
async function expectDecodesOrNamesFile(label: string, input: Uint8Array, run: () => Promise<unknown> | unknown): Promise<void> {
  try {
    await run();
  } catch (e) {
    const where = `${label} mutated to ${Buffer.from(input.subarray(0, 64)).toString('hex')}...`;
    expect(e, where).toBeInstanceOf(Error);
    expect((e as Error).constructor, `${where}: ${(e as Error).stack}`).toBe(Error);
    expect((e as Error).message, where).toMatch(new RegExp(`^${label.replace(/\./g, '\\.')}: [^\\n\\r\\u2028\\u2029]+$`));
  }
}

/** PNG chunks with their CRCs recomputed, so that a mutation reaches the decoder instead of the CRC check. */
function fixCrcs(png: Uint8Array): Uint8Array {
  const out = Uint8Array.from(png);
  const view = new DataView(out.buffer);
  for (let pos = 8; pos + 12 <= out.length; ) {
    const end = pos + 12 + view.getUint32(pos);
    if (end > out.length) break;
    view.setUint32(end - 4, crc32(out.subarray(pos + 4, end - 4)));
    pos = end;
  }
  return out;
}

describe('seeded mutation fuzz', () => {
  it('safetensors headers and data', async () => {
    const base = encodeSafetensors(
      {
        a: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) },
        b: { dtype: 'I32', shape: [4], data: new Int32Array(4) },
        c: { dtype: 'BF16', shape: [0], data: new Uint16Array(0) },
      },
      { files: '["x.png"]' },
    );
    const headerEnd = 8 + Number(new DataView(base.buffer).getBigUint64(0, true));
    const rand = rng(1);
    for (let i = 0; i < CASES; i++) {
      const m = mutate(base, rand, i % 4 === 0 ? base.length : headerEnd);
      await expectDecodesOrNamesFile('fuzz.safetensors', m, async () => {
        const st = await openSafetensors(new MemoryReader(m, 'fuzz.safetensors'));
        for (const name of st.names()) await st.read(name);
      });
    }
  });

  it('PNG files (half of them with CRCs fixed, so that the decoder sees the damage)', async () => {
    const base = readFileSync(join(caseDir('tiny'), 'input_1.png'));
    const rand = rng(2);
    for (let i = 0; i < CASES; i++) {
      const m = mutate(base, rand, i % 3 === 0 ? base.length : 120);
      const input = i % 2 ? fixCrcs(m) : m;
      await expectDecodesOrNamesFile('fuzz.png', input, () => decodeImage(input, 'fuzz.png'));
    }
  });

  it('PNG chunk types of every byte value (a type is echoed in messages: never a raw newline or ESC)', async () => {
    const base = readFileSync(join(caseDir('tiny'), 'input_1.png'));
    for (let b = 0; b < 256; b++) {
      for (const at of [12, 15]) {
        const m = Uint8Array.from(base);
        m[at] = b;
        await expectDecodesOrNamesFile('fuzz.png', m, () => decodeImage(m, 'fuzz.png'));
        await expectDecodesOrNamesFile('fuzz.png', fixCrcs(m), () => decodeImage(fixCrcs(m), 'fuzz.png'));
      }
    }
  });

  it('JPEG files', async () => {
    const pixels = new Uint8Array(32 * 24 * 4).map((_, i) => (i * 37) & 255);
    const base = new Uint8Array(jpeg.encode({ width: 32, height: 24, data: pixels }, 80).data);
    const rand = rng(3);
    for (let i = 0; i < CASES; i++) {
      const m = mutate(base, rand, i % 2 ? base.length : 700);
      await expectDecodesOrNamesFile('fuzz.jpg', m, () => decodeImage(m, 'fuzz.jpg'));
    }
  });

  it('JSON codes files', async () => {
    const quant = { nEmbed: 64, codeShape: [2, 2, 2] } as QuantizerConfig;
    const base = new TextEncoder().encode(JSON.stringify({ shape: [1, 2, 2, 2], pixel: [0, 1, 2, 3, 60, 61, 62, 63], semantic: [1] }));
    const rand = rng(4);
    for (let i = 0; i < CASES; i++) {
      const m = mutate(base, rand);
      await expectDecodesOrNamesFile('fuzz.json', m, () => parseCodes(m, 'fuzz.json', quant));
    }
  });
});
