// The CLI against hostile inputs and outputs (the "field reliability" issue): outputs written
// atomically and checked before any work, one-line errors with control characters escaped,
// validated JSON codes, batches where one image fails, a full disk, device loss, Dawn's warnings.
// Most cases fail before the model loads (fast); the few that encode use the tiny golden model.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryReader } from '../src/core/bytes.js';
import { toFloat32 } from '../src/core/dtype.js';
import { DeviceLostError } from '../src/core/gpu.js';
import type { RgbImage } from '../src/core/image.js';
import { DeviceLossRetry, GaveUp, runBatches } from '../src/node/batches.js';
import { encodeSafetensors, openSafetensors, type TensorToWrite } from '../src/core/safetensors.js';
import { oneLine } from '../src/node/messages.js';
import { folderOutputs, writeFile } from '../src/node/output.js';
import { CLI, cli } from './helpers/cli.js';
import { caseDir } from './helpers/golden.js';

const MODEL = caseDir('tiny');
const tmp = mkdtempSync(join(tmpdir(), 'dualtoken-hostile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const dir = () => {
  const d = join(tmp, `${n++}`);
  mkdirSync(d);
  return d;
};
const lines = (s: string) => s.split('\n');

/** Exit 1, exactly one stderr line `dualtoken: ...` matching `message`. */
function expectOneLineError(r: { status: number; stderr: string }, message: RegExp): void {
  expect(r.status, r.stderr).toBe(1);
  expect(lines(r.stderr), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^dualtoken: /);
  expect(r.stderr).toMatch(message);
}

/** The PNG signature and IHDR of `png`, then a chunk of type `type` (4 bytes) claiming 1000 bytes that the file lacks. */
function pngWithTruncatedChunk(png: Uint8Array, type: Uint8Array): Uint8Array {
  const chunk = new Uint8Array(12);
  new DataView(chunk.buffer).setUint32(0, 1000);
  chunk.set(type, 4);
  return Buffer.concat([png.subarray(0, 33), chunk]);
}

describe('oneLine', () => {
  it('folds newlines and escapes control characters', () => {
    expect(oneLine('a\n  b\r\nc')).toBe('a b c');
    expect(oneLine('x\x1b[2Jy\x07\x9b\u202e')).toBe('x\\x1b[2Jy\\x07\\x9b\\u202e');
  });
});

describe('outputs are checked before any work and never clobber an input', () => {
  it('refuses an output that is an input, also through a link, naming both; the input is intact', () => {
    const d = dir();
    const img = join(d, 'a.png');
    copyFileSync(join(MODEL, 'input_0.png'), img);
    const before = readFileSync(img);
    symlinkSync(img, join(d, 'link.png'));
    expectOneLineError(cli(['reconstruct', '--model', MODEL, img, '--out', join(d, 'link.png')]), /link\.png: this output is the input .*a\.png; refusing to overwrite it/);
    expectOneLineError(cli(['reconstruct', '--model', MODEL, img, join(MODEL, 'input_1.png'), '--out', d]), /a\.png: this output is the input .*a\.png/);
    expectOneLineError(cli(['encode', '--model', MODEL, '--pixel-values', join(MODEL, 'expected.safetensors'), '--out', join(MODEL, 'model.safetensors')]), /model\.safetensors: this output is the input/);
    expect(readFileSync(img).equals(before)).toBe(true);
  });

  it('refuses an --out whose extension contradicts the format', () => {
    const d = dir();
    const img = join(d, 'in.png');
    copyFileSync(join(MODEL, 'input_0.png'), img);
    expectOneLineError(cli(['encode', '--model', MODEL, join(MODEL, 'input_0.png'), '--out', img]), /in\.png: the output of 'encode' must end in \.safetensors or \.json/);
    expectOneLineError(cli(['encode', '--model', MODEL, join(MODEL, 'input_0.png'), '--format', 'safetensors', '--out', join(d, 'c.json')]), /c\.json: safetensors output must go to a \.safetensors file/);
    expectOneLineError(cli(['encode', '--model', MODEL, join(MODEL, 'input_0.png'), '--out', '-']), /--out - \(stdout\) needs --format safetensors\|json/);
    expectOneLineError(cli(['decode', '--model', MODEL, join(MODEL, 'expected.safetensors'), '--format', 'png', '--out', '-']), /--out - \(stdout\) takes --format safetensors/);
    expect(readFileSync(img).equals(readFileSync(join(MODEL, 'input_0.png')))).toBe(true);
  });

  it('fails fast, on one line, for an --out under /proc or below a file', () => {
    const start = Date.now();
    expectOneLineError(cli(['encode', '--model', MODEL, join(MODEL, 'input_0.png'), '--out', '/proc/dualtoken/x/c.safetensors'], 20_000), /\/proc\/dualtoken\/x\/c\.safetensors: cannot create the folder \/proc\/dualtoken \(ENOENT\)/);
    expect(Date.now() - start).toBeLessThan(15_000);
    const d = dir();
    writeFileSync(join(d, 'file'), 'x');
    expectOneLineError(cli(['reconstruct', '--model', MODEL, join(MODEL, 'input_0.png'), '--out', join(d, 'file', 'r.png')]), /file\/r\.png: cannot write \(.*file is not a folder\)/);
    expectOneLineError(cli(['reconstruct', '--model', MODEL, join(MODEL, 'input_0.png'), '--out', join(d, 'file')]), /must be a \.png file/);
  });

  it('reconstruct into a folder keeps same-named inputs apart', () => {
    const out = folderOutputs(['d1/x.png', 'd2/x.png', 'y.jpg', 'y.png', 'x-2.png'], 'o');
    expect(out.map((o) => o.path)).toEqual(['o/x.png', 'o/x-2.png', 'o/y.png', 'o/y-2.png', 'o/x-2-2.png']);
    expect(out.map((o) => o.renamed)).toEqual([false, true, false, true, true]);
  });
});

describe('--out - writes to stdout', () => {
  it('safetensors codes that decode reads back; a closed stdout is one line', async () => {
    const d = dir();
    const r = cli(['encode', '--model', MODEL, '--pixel-values', join(MODEL, 'expected.safetensors'), '--format', 'safetensors', '--out', '-']);
    expect(r.status, r.stderr).toBe(0);
    writeFileSync(join(d, 'c.safetensors'), r.stdout);
    const back = cli(['decode', '--model', MODEL, join(d, 'c.safetensors'), '--format', 'safetensors', '--out', '-']);
    expect(back.status, back.stderr).toBe(0);
    expect(back.stdout.length).toBeGreaterThan(2 * 3 * 64 * 64 * 4);
    const closed = spawnSync('sh', ['-c', `"${process.execPath}" "${CLI}" encode --model "${MODEL}" --pixel-values "${join(MODEL, 'expected.safetensors')}" --format json --out - --quiet | head -c 0`], { encoding: 'utf8' });
    expect(closed.stderr).toBe('dualtoken: stdout: cannot write (EPIPE)\n');
  });
});

describe('one line naming the file', () => {
  it('a model.safetensors that is a folder, a header that is not UTF-8, a chunk type with ESC[2J', () => {
    const d = dir();
    const model = join(d, 'model');
    mkdirSync(join(model, 'model.safetensors'), { recursive: true });
    for (const f of ['config.json', 'siglip_config.json']) copyFileSync(join(MODEL, f), join(model, f));
    expectOneLineError(cli(['info', '--model', model]), /model\/model\.safetensors: cannot read \(it is a folder, not a file\)/);

    const codes = join(d, 'codes.safetensors');
    const bytes = new Uint8Array(8 + 4);
    bytes[0] = 4;
    bytes.set([0xff, 0xfe, 0x1b, 0x0a], 8);
    writeFileSync(codes, bytes);
    expectOneLineError(cli(['decode', '--model', MODEL, codes, '--out', join(d, 'r.png')]), /codes\.safetensors: header is not UTF-8 text/);

    const esc = join(d, 'esc.png');
    writeFileSync(esc, pngWithTruncatedChunk(readFileSync(join(MODEL, 'input_0.png')), new Uint8Array([0x1b, 0x5b, 0x32, 0x4a])));
    const r = cli(['encode', '--model', MODEL, esc, '--out', join(d, 'c.safetensors')]);
    expect(r.stderr).not.toMatch(/\x1b/);
    expect(r.stderr).toMatch(/esc\.png: truncated PNG \(chunk \\x1b\[2J at byte 33/);
    expect(r.status).toBe(1);
  });
});

describe('JSON codes are validated before the model loads', () => {
  const cases: [string, unknown, RegExp][] = [
    ['null', null, /expected token JSON \{shape, pixel: \[\.\.\.\]\}/],
    ['pixel-null', { shape: [1, 4, 4, 4], pixel: null }, /expected token JSON/],
    ['string-dim', { shape: ['1', 4, 4, 4], pixel: Array(64).fill(0) }, /shape \["1",4,4,4\] must hold positive integers/],
    ['zero-dim', { shape: [0, 4, 4, 4], pixel: [] }, /shape \[0,4,4,4\] must hold positive integers/],
    ['wrong-grid', { shape: [1, 4, 4, 3], pixel: Array(48).fill(0) }, /shape \[1,4,4,3\], the model takes \[B,4,4,4\]/],
    ['wraps', { shape: [1, 4, 4, 4], pixel: [...Array(5).fill(0), 2 ** 32 + 5, ...Array(58).fill(0)] }, /pixel\[0,0,1,1\] = 4294967301 is out of range for the 64-entry codebook/],
    ['negative', { shape: [1, 4, 4, 4], pixel: [-1, ...Array(63).fill(0)] }, /pixel\[0,0,0,0\] = -1 is out of range/],
    ['fraction', { shape: [1, 4, 4, 4], pixel: [0, 1.5, ...Array(62).fill(0)] }, /pixel\[0,0,0,1\] = 1\.5 is not a code of the 64-entry codebook/],
    ['nested', { shape: [1, 4, 4, 4], pixel: [[0], ...Array(63).fill(0)] }, /pixel\[0,0,0,0\] = \[0\] is not a code/],
    ['short', { shape: [2, 4, 4, 4], pixel: Array(64).fill(0) }, /pixel: 64 values, its shape \[2,4,4,4\] needs 128/],
  ];
  it.each(cases)('%s', (name, json, message) => {
    const d = dir();
    const path = join(d, `${name}.json`);
    writeFileSync(path, JSON.stringify(json));
    const r = cli(['decode', '--model', MODEL, path, '--out', join(d, 'r.png')]);
    expectOneLineError(r, new RegExp(`${name}\\.json: ${message.source}`));
    expect(readdirSync(d)).toEqual([`${name}.json`]);
  });
});

describe('writes are atomic', () => {
  const mnt = join(tmp, 'tiny-fs');
  mkdirSync(mnt);
  let mounted = false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt], { stdio: 'ignore' });
    mounted = true;
  } catch {
    // not root, or no mount: the test is skipped (see the report's note)
  }
  afterAll(() => {
    if (mounted) execFileSync('umount', [mnt]);
  });

  it.skipIf(!mounted)('a full disk (ENOSPC): one line, the previous file intact, no temporary file left', () => {
    const target = join(mnt, 'recon.safetensors');
    writeFileSync(target, 'previous');
    expect(() => writeFile(target, new Uint8Array(128 * 1024))).toThrow(`${target}: cannot write (ENOSPC)`);
    expect(readFileSync(target, 'utf8')).toBe('previous');
    expect(readdirSync(mnt)).toEqual(['recon.safetensors']);
    // Through the CLI: decoding the two golden images' codes needs 96 KiB of f32 recon.
    const r = cli(['decode', '--model', MODEL, join(MODEL, 'expected.safetensors'), '--out', target]);
    expectOneLineError(r, new RegExp(`${target}: cannot write \\(ENOSPC\\)`));
    expect(readFileSync(target, 'utf8')).toBe('previous');
    expect(readdirSync(mnt)).toEqual(['recon.safetensors']);
  });
});

describe('batches', () => {
  const img = (v: number): RgbImage => ({ width: 1, height: 1, data: new Uint8Array([v, v, v]) });
  const job = (paths: string[], size: number, run: (images: RgbImage[]) => Promise<number[]>, retry = new DeviceLossRetry(async () => undefined)) => {
    const log: string[] = [];
    const taken: number[] = [];
    const promise = runBatches({
      paths,
      size,
      read: (p) => {
        log.push(`read ${p}`);
        if (p.startsWith('bad')) throw new Error(`${p}: corrupt`);
        return img(Number(p.slice(1)));
      },
      run: async (images) => {
        log.push(`run ${images.map((i) => i.data[0]).join(',')}`);
        return run(images);
      },
      take: (indices, r) => {
        expect(r).toHaveLength(indices.length);
        taken.push(...indices);
      },
      retry,
      fail: (m) => log.push(`fail ${m}`),
    });
    return { log, taken, promise };
  };
  const values = async (images: RgbImage[]) => images.map((i) => i.data[0]);

  it('decodes one batch ahead of the GPU, never more', async () => {
    const j = job(['i1', 'i2', 'i3', 'i4', 'i5', 'i6'], 2, values);
    expect(await j.promise).toBe(0);
    expect(j.log).toEqual(['read i1', 'read i2', 'run 1,2', 'read i3', 'read i4', 'run 3,4', 'read i5', 'read i6', 'run 5,6']);
    expect(j.taken).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('an unreadable image and a batch that fails on the GPU: the other images go through, one line each', async () => {
    const j = job(['i1', 'bad.png', 'i3', 'i4', 'i7', 'i8'], 3, async (images) => {
      if (images.some((i) => i.data[0] === 7)) throw new Error('GPU says no');
      return values(images);
    });
    expect(await j.promise).toBe(2);
    expect(j.log.filter((l) => l.startsWith('fail'))).toEqual(['fail bad.png: corrupt', 'fail i7: GPU says no']);
    expect(j.log.filter((l) => l.startsWith('run'))).toEqual(['run 1,3', 'run 4,7,8', 'run 4', 'run 7', 'run 8']);
    expect(j.taken).toEqual([0, 2, 3, 5]);
  });

  it('a lost device reloads the model once and retries the batch; a second loss gives up', async () => {
    let reloads = 0;
    let losses = 1;
    const retry = new DeviceLossRetry(async () => void reloads++);
    const j = job(['i1', 'i2', 'i3'], 1, async (images) => {
      if (images[0].data[0] === 2 && losses-- > 0) throw new DeviceLostError('GPU device lost: test');
      if (images[0].data[0] === 3) throw new DeviceLostError('GPU device lost: again');
      return values(images);
    }, retry);
    await expect(j.promise).rejects.toThrow(GaveUp);
    await expect(j.promise).rejects.toThrow(/GPU device lost: again \(again, after reloading the model on a new device\): giving up/);
    expect(reloads).toBe(1);
    expect(j.taken).toEqual([0, 1]);
  });
});

describe('encode and reconstruct on the tiny model', () => {
  it('a batch of 3 with a corrupt middle image: status 2, one line, the others written with the codes they get alone', () => {
    const d = dir();
    const [a, bad, c] = ['a.png', 'bad.png', 'c.png'].map((f) => join(d, f));
    copyFileSync(join(MODEL, 'input_0.png'), a);
    writeFileSync(bad, readFileSync(join(MODEL, 'input_1.png')).subarray(0, 100));
    copyFileSync(join(MODEL, 'input_1.png'), c);
    const r = cli(['encode', '--model', MODEL, a, bad, c, '--batch-size', '3', '--format', 'json', '--out', '-']);
    expect(r.status, r.stderr).toBe(2);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^dualtoken: .*bad\.png: truncated PNG/), expect.stringMatching(/^dualtoken: 1 of 3 images failed; - holds the other 2$/)]);
    const got = JSON.parse(r.stdout.toString('utf8'));
    expect(got.files).toEqual([a, c]);
    for (const [i, one] of [a, c].entries()) {
      const alone = JSON.parse(cli(['encode', '--model', MODEL, one, '--format', 'json', '--out', '-']).stdout.toString('utf8'));
      expect(got.pixel.slice(i * 64, (i + 1) * 64)).toEqual(alone.pixel);
    }

    // reconstruct: same-named inputs in two folders both written; the corrupt one reported.
    mkdirSync(join(d, 'd2'));
    copyFileSync(c, join(d, 'd2', 'a.png'));
    const out = join(d, 'out');
    const rec = cli(['reconstruct', '--model', MODEL, a, bad, join(d, 'd2', 'a.png'), '--batch-size', '3', '--out', out]);
    expect(rec.status, rec.stderr).toBe(2);
    expect(readdirSync(out).sort()).toEqual(['a-2.png', 'a.png']);
  });
});

describe("Dawn's adapter warnings", () => {
  // Without the fix every run that creates a device ends its stderr with two "Warning:
  // max...PerPipelineLayout artificially reduced ..." lines, whatever the kind of stderr.
  it('never reach stderr: a socket, a plain file, a file opened for appending, a pipe', () => {
    const d = dir();
    const args = ['info', '--model', MODEL];
    expect(cli(args).stderr, 'socket').toBe('');
    for (const flags of ['w', 'a']) {
      const path = join(d, `stderr-${flags}`);
      writeFileSync(path, 'before\n');
      const fd = openSync(path, flags);
      const r = cli(args, 120_000, ['ignore', 'ignore', fd]);
      closeSync(fd);
      expect(r.status).toBe(0);
      expect(readFileSync(path, 'utf8'), `file opened with '${flags}'`).toBe(flags === 'a' ? 'before\n' : '');
    }
    const pipe = spawnSync('sh', ['-c', `"${process.execPath}" "${CLI}" info --model "${MODEL}" --quiet 2>&1 >/dev/null | cat`], { encoding: 'utf8' });
    expect(pipe.stdout, 'pipe').toBe('');
  });
});

describe('non-finite weights through the CLI', () => {
  it('refuses a model with an Inf weight naming the tensor; --allow-nonfinite loads it and the encode fails naming the stage', async () => {
    const d = dir();
    for (const f of ['config.json', 'siglip_config.json']) copyFileSync(join(MODEL, f), join(d, f));
    const st = await openSafetensors(new MemoryReader(readFileSync(join(MODEL, 'model.safetensors')), 'model.safetensors'));
    const tensors: Record<string, TensorToWrite> = {};
    for (const name of st.names()) {
      const info = st.info(name)!;
      tensors[name] = { dtype: 'F32', shape: info.shape, data: toFloat32(await st.read(name), info.dtype, name) };
    }
    const fc1 = 'siglip_model.vision_model.encoder.layers.0.mlp.fc1.weight';
    (tensors[fc1].data as Float32Array)[7] = Infinity;
    writeFileSync(join(d, 'model.safetensors'), encodeSafetensors(tensors));
    const out = join(d, 'codes.safetensors');
    const args = ['encode', '--model', d, '--pixel-values', join(MODEL, 'expected.safetensors'), '--out', out];
    expectOneLineError(cli(args), /model\.safetensors: tensor '.*layers\.0\.mlp\.fc1\.weight' has 1 non-finite value \(Inf at index 7\)/);
    expectOneLineError(cli([...args, '--allow-nonfinite']), /non-finite values entering the (pixel|semantic) quantizer/);
    expect(existsSync(out)).toBe(false);
  });
});
