// The built CLI (dist/node/cli.js, made by `npm run build`, which `npm test` runs first) on a
// golden case: the file contract (tensor names, dtypes, shapes), the values, and bad inputs:
// a one-line error naming the file, a non-zero status, and the other files' output still written.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe as suite, expect, it } from 'vitest';
import { MemoryReader } from '../src/core/bytes.js';
import { toFloat32, toInt32 } from '../src/core/dtype.js';
import { crc32 } from '../src/core/image.js';
import { openSafetensors } from '../src/core/safetensors.js';
import { decodeImage } from '../src/node/decode.js';
import { cli as runCli } from './helpers/cli.js';
import { Golden, REL_TO_MAX, caseDir, compareFloat, describe } from './helpers/golden.js';

const MODEL = caseDir('tiny');

/** stderr unfiltered: Dawn's adapter warnings must not reach it either. */
function cli(...args: string[]): { status: number; stderr: string; stdout: string } {
  const r = runCli(args);
  return { ...r, stdout: r.stdout.toString('utf8') };
}

async function readTensors(path: string) {
  const st = await openSafetensors(new MemoryReader(readFileSync(path), path));
  const get = async (name: string) => {
    const info = st.info(name);
    if (!info) throw new Error(`${path}: no ${name}`);
    const bytes = await st.read(name);
    return { shape: info.shape, dtype: info.dtype, data: info.dtype === 'I32' ? toInt32(bytes, 'I32', name) : toFloat32(bytes, info.dtype, name) };
  };
  return { names: st.names().sort(), get };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'dualtoken-cli-'));

suite('dualtoken CLI on golden case tiny', () => {
  it('encode --pixel-values writes the contract tensors with the reference values', async () => {
    const dir = tmp();
    const out = join(dir, 'codes.safetensors');
    const r = cli('encode', '--model', MODEL, '--pixel-values', join(MODEL, 'expected.safetensors'), '--out', out);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const f = await readTensors(out);
    expect(f.names).toEqual(['code_pix', 'code_sem', 'pooler_output', 'z_q_sem']);
    const golden = await Golden.open('tiny');
    for (const name of ['code_pix', 'code_sem']) {
      const t = await f.get(name);
      expect(t.dtype).toBe('I32');
      expect(t.shape).toEqual([2, 4, 4, 4]);
      expect(Array.from(t.data)).toEqual(Array.from((await golden.get(name)).data));
    }
    for (const [name, shape] of [['z_q_sem', [2, 16, 64]], ['pooler_output', [2, 64]]] as const) {
      const t = await f.get(name);
      expect([t.dtype, t.shape]).toEqual(['F32', shape]);
      const c = compareFloat(`cli ${name}`, t.data, await golden.get(name));
      expect(c.relToMax, describe(c)).toBeLessThanOrEqual(REL_TO_MAX);
    }

    // decode of those codes: recon as safetensors, and one PNG per batch item.
    const recon = join(dir, 'recon.safetensors');
    expect(cli('decode', '--model', MODEL, out, '--out', recon).status).toBe(0);
    const t = await (await readTensors(recon)).get('recon');
    expect([t.dtype, t.shape]).toEqual(['F32', [2, 3, 64, 64]]);
    const c = compareFloat('cli recon', t.data, await golden.get('recon_from_codes'));
    expect(c.relToMax, describe(c)).toBeLessThanOrEqual(REL_TO_MAX);
    expect(cli('decode', '--model', MODEL, out, '--out', join(dir, 'img.png')).status).toBe(0);
    for (const b of [0, 1]) {
      const got = decodeImage(readFileSync(join(dir, `img_${b}.png`)), `img_${b}.png`);
      const ref = decodeImage(readFileSync(join(MODEL, `recon_${b}.png`)), `recon_${b}.png`);
      expect(got.data.every((v, i) => Math.abs(v - ref.data[i]) <= 1)).toBe(true);
    }
  });

  it('encodes image files to the reference codes, as safetensors and as JSON that decode accepts', async () => {
    const dir = tmp();
    const inputs = [join(MODEL, 'input_0.png'), join(MODEL, 'input_1.png')];
    expect(cli('encode', '--model', MODEL, ...inputs, '--out', join(dir, 'c.safetensors')).status).toBe(0);
    const golden = await Golden.open('tiny');
    const pix = await (await readTensors(join(dir, 'c.safetensors'))).get('code_pix');
    expect(Array.from(pix.data)).toEqual(Array.from((await golden.get('code_pix')).data));
    expect(cli('encode', '--model', MODEL, ...inputs, '--format', 'json', '--out', join(dir, 'c.json')).status).toBe(0);
    const j = JSON.parse(readFileSync(join(dir, 'c.json'), 'utf8'));
    expect(j.shape).toEqual([2, 4, 4, 4]);
    expect(j.pixel).toEqual(Array.from(pix.data));
    expect(j.files).toEqual(inputs);
    expect(cli('decode', '--model', MODEL, join(dir, 'c.json'), '--out', join(dir, 'r.safetensors')).status).toBe(0);
    expect(cli('reconstruct', '--model', MODEL, inputs[0], '--out', join(dir, 'one.png')).status).toBe(0);
    expect(decodeImage(readFileSync(join(dir, 'one.png')), 'one.png').width).toBe(64);
  });

  it("info --precision f16 reports the precision; an unknown precision is refused", () => {
    const r = cli('info', '--model', MODEL, '--precision', 'f16');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^kernels .*; precision f16$/m);
    const bad = cli('info', '--model', MODEL, '--precision', 'f64');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe('dualtoken: --precision f64: use f32 or f16');
  });

  it('reports each bad image on one line, exits non-zero, and still writes the others', async () => {
    const dir = tmp();
    const good = join(dir, 'good.png');
    copyFileSync(join(MODEL, 'input_0.png'), good);
    const png = readFileSync(good);
    const bad: Record<string, [Uint8Array, RegExp]> = {
      'notimage.png': [new TextEncoder().encode('hello, I am text'), /notimage\.png: not a PNG or JPEG image/],
      'empty.png': [new Uint8Array(0), /empty\.png: empty file \(0 bytes\)/],
      'truncated.png': [png.subarray(0, png.length / 2), /truncated\.png: .*(truncated|corrupt)/i],
      'huge.png': [hugePng(png), /huge\.png: image is 100000x100000 pixels, over the limit of 16384 pixels per side/],
    };
    for (const [name, [bytes, message]] of Object.entries(bad)) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      const out = join(dir, `${name}.codes.safetensors`);
      const r = cli('encode', '--model', MODEL, good, path, '--out', out);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(message);
      expect(r.stderr).toMatch(/1 of 2 images failed/);
      expect(r.stderr.split('\n').every((l) => l.startsWith('dualtoken: '))).toBe(true);
      expect((await (await readTensors(out)).get('code_pix')).shape).toEqual([1, 4, 4, 4]);
      const rec = cli('reconstruct', '--model', MODEL, good, path, '--out', join(dir, `recon-${name}`));
      expect(rec.status).toBe(2);
      expect(existsSync(join(dir, `recon-${name}`, 'good.png'))).toBe(true);
    }
  });

  it('fails with one line and a non-zero status on bad arguments, models and codes', () => {
    const dir = tmp();
    const cases: [string[], RegExp][] = [
      [['encode', '--out', join(dir, 'x.safetensors'), join(MODEL, 'input_0.png')], /^dualtoken: 'encode' needs --model$/],
      [['frobnicate'], /^dualtoken: unknown command 'frobnicate'/],
      [['encode', '--model', join(dir, 'nowhere'), join(MODEL, 'input_0.png'), '--out', join(dir, 'x.safetensors')], /nowhere: no such file or folder/],
      [['decode', '--model', MODEL, join(MODEL, 'config.json'), '--out', join(dir, 'x.png')], /config\.json: expected token JSON \{shape, pixel: \[\.\.\.\]\}/],
      [['decode', '--model', MODEL, join(MODEL, 'input_0.png'), '--out', join(dir, 'x.png')], /input_0\.png: header length \d+ exceeds the limit/],
    ];
    const codes = { shape: [1, 4, 4, 4], pixel: Array.from({ length: 64 }, (_, i) => (i === 5 ? 64 : 0)) };
    writeFileSync(join(dir, 'bad-codes.json'), JSON.stringify(codes));
    cases.push([['decode', '--model', MODEL, join(dir, 'bad-codes.json'), '--out', join(dir, 'y.png')], /bad-codes\.json: pixel\[0,0,1,1\] = 64 is out of range for the 64-entry codebook/]);
    for (const [args, message] of cases) {
      const r = cli(...args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr.split('\n').length, r.stderr).toBe(1);
      expect(r.stderr).toMatch(message);
    }
  });
});

/** The golden input with its IHDR claiming 100000 x 100000 (CRC recomputed, so only the size is wrong). */
function hugePng(png: Uint8Array): Uint8Array {
  const out = Uint8Array.from(png);
  const view = new DataView(out.buffer);
  view.setUint32(16, 100000);
  view.setUint32(20, 100000);
  view.setUint32(29, crc32(out.subarray(12, 29)));
  return out;
}
