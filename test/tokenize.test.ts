// tokenize: folders, list files and WebDataset tar shards into token shards with the codes
// model.encodeImages gives for the same images; failures kept per image; reruns skip complete
// shards; a run killed (SIGKILL) or interrupted (SIGINT) midway, then rerun, gives the same
// bytes as an uninterrupted run. Tiny golden model, small images made here.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DualToken } from '../src/model/dualtoken.js';
import { decodeImage } from '../src/node/decode.js';
import { loadDualToken } from '../src/node/load.js';
import { tarMembers, webdatasetImages, writeTar } from '../src/node/tar.js';
import { openSource } from '../src/node/sources.js';
import { configHash } from '../src/node/shards.js';
import { tokenize, tokenizeSource } from '../src/node/tokenize.js';
import { jpegBytes, pngBytes, readShard, shardFile, write, writeShard } from './helpers/dataset.js';
import { caseDir } from './helpers/golden.js';
import { bundleRunner, runnerEnv } from './helpers/redis.js';

const MODEL = caseDir('tiny');
let model: DualToken;
let runner: string;
const tmp = () => mkdtempSync(join(tmpdir(), 'dualtoken-tokenize-'));

beforeAll(async () => {
  [model, runner] = await Promise.all([loadDualToken(MODEL, { silenceAdapterWarnings: true }), bundleRunner()]);
});
afterAll(() => {
  model?.dispose();
  if (runner) rmSync(runner, { force: true });
});

/** Codes of each image alone through model.encodeImages. */
async function expectedCodes(images: Uint8Array[]): Promise<{ pix: number[]; sem: number[]; pooler: number[] }> {
  const out = { pix: [] as number[], sem: [] as number[], pooler: [] as number[] };
  for (const [i, bytes] of images.entries()) {
    const r = await model.encodeImages([decodeImage(bytes, `image ${i}`)]);
    out.pix.push(...r.pixelCodes);
    out.sem.push(...r.semanticCodes);
    out.pooler.push(...r.embedding);
  }
  return out;
}

describe('tar reader', () => {
  it('reads ustar members and groups WebDataset samples by key', async () => {
    const dir = tmp();
    const path = join(dir, 's.tar');
    const long = `${'d'.repeat(60)}/${'n'.repeat(30)}`;
    write(path, writeTar([
      { name: 'a.txt', data: Buffer.from('x') },
      { name: 'a.png', data: Buffer.from('1') },
      { name: 'a.jpg', data: Buffer.from('2') }, // a second image of sample a: not taken
      { name: 'b.seg.png', data: Buffer.from('3') }, // extension 'seg.png': not an image member
      { name: 'c.json', data: Buffer.from('{}') },
      { name: `${long}.JPEG`, data: new Uint8Array(1000).fill(7) },
    ]));
    const names: string[] = [];
    for await (const m of tarMembers(path)) names.push(m.name);
    expect(names).toEqual(['a.txt', 'a.png', 'a.jpg', 'b.seg.png', 'c.json', `${long}.JPEG`]);
    const samples: [string, number][] = [];
    for await (const s of webdatasetImages(path)) samples.push([s.key, (await s.read()).length]);
    expect(samples).toEqual([['a', 1], [long, 1000]]);
    // Truncated: refused naming the file.
    const bytes = readFileSync(path);
    write(join(dir, 't.tar'), bytes.subarray(0, 1024 + 100));
    await expect(async () => {
      for await (const _ of tarMembers(join(dir, 't.tar'))) void _;
    }).rejects.toThrow(/t\.tar: truncated/);
    write(join(dir, 'n.tar'), new Uint8Array(2048).fill(65));
    await expect(async () => {
      for await (const _ of tarMembers(join(dir, 'n.tar'))) void _;
    }).rejects.toThrow(/not a tar file/);
  });
});

describe('tokenize', () => {
  it('a folder, a list file and a tar shard give the codes of model.encodeImages, failures kept per image', async () => {
    const dir = tmp();
    // Folder: nested, sorted by relative path; a broken image fails alone; other files are ignored.
    write(join(dir, 'photos', 'b.png'), pngBytes(1));
    write(join(dir, 'photos', 'a', 'z.jpg'), jpegBytes(2));
    write(join(dir, 'photos', 'a', 'y.PNG'), pngBytes(3));
    write(join(dir, 'photos', 'broken.png'), Buffer.from('not a png'));
    write(join(dir, 'photos', 'notes.txt'), 'ignored');
    write(join(dir, 'photos', 'c.jpeg'), jpegBytes(4));
    // List file: relative to its folder, comments and blank lines skipped, a missing file fails.
    write(join(dir, 'imgs', 'p.png'), pngBytes(5));
    write(join(dir, 'imgs', 'q.jpg'), jpegBytes(6));
    write(join(dir, 'list.txt'), `# images\nimgs/q.jpg\n\nimgs/missing.png\n${join(dir, 'imgs', 'p.png')}\n`);
    const tarKeys = writeShard(join(dir, 'shard-000.tar'), 10, 7);
    const out = join(dir, 'out');
    const shards: string[] = [];
    const summary = await tokenize(model, [join(dir, 'photos'), join(dir, 'list.txt'), join(dir, 'shard-000.tar')], out, { batchSize: 3, keep: ['pooler'], onShard: (r) => shards.push(r.shard) });
    expect(summary.images).toBe(4 + 2 + 7);
    expect(summary.failures).toBe(2);

    const cases: [string, string[], Uint8Array[], string[]][] = [
      ['photos', ['a/y.PNG', 'a/z.jpg', 'b.png', 'c.jpeg'], [pngBytes(3), jpegBytes(2), pngBytes(1), jpegBytes(4)], ['broken.png']],
      ['list', ['imgs/q.jpg', join(dir, 'imgs', 'p.png')], [jpegBytes(6), pngBytes(5)], ['imgs/missing.png']],
      ['shard-000', tarKeys, tarKeys.map((_, i) => ((10 + i) % 3 === 0 ? jpegBytes(10 + i) : pngBytes(10 + i))), []],
    ];
    const [h, w, D] = model.config.quantPix.codeShape;
    for (const [name, keys, images, failed] of cases) {
      const s = await readShard(shardFile(out, name));
      expect(s.keys).toEqual(keys);
      expect(s.failed.map((f) => f.key)).toEqual(failed);
      for (const f of s.failed) expect(f.reason).not.toMatch(/\n/);
      expect(s.meta.config_hash).toBe(configHash(model.config));
      expect(s.tensors.code_pix.shape).toEqual([keys.length, h, w, D]);
      expect(s.tensors.code_pix.dtype).toBe('I32');
      const ref = await expectedCodes(images);
      expect(Array.from(s.tensors.code_pix.data)).toEqual(ref.pix);
      expect(Array.from(s.tensors.code_sem.data)).toEqual(ref.sem);
      expect(s.tensors.pooler_output.shape).toEqual([keys.length, model.config.vision.hiddenSize]);
      const maxRef = Math.max(...ref.pooler.map(Math.abs));
      expect(Math.max(...Array.from(s.tensors.pooler_output.data, (v, i) => Math.abs(v - ref.pooler[i])))).toBeLessThanOrEqual(1e-4 * maxRef);
    }
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { shards: { shard: string; images: number; failures: unknown[]; config_hash: string }[] };
    expect(manifest.shards.map((e) => [e.shard, e.images, e.failures.length])).toEqual([
      ['list.tokens.safetensors', 2, 1],
      ['photos.tokens.safetensors', 4, 1],
      ['shard-000.tokens.safetensors', 7, 0],
    ]);
    // A rerun skips every complete shard; another `keep` redoes them.
    const mtime = statSync(shardFile(out, 'photos')).mtimeMs;
    const again = await tokenize(model, [join(dir, 'photos'), join(dir, 'list.txt'), join(dir, 'shard-000.tar')], out, { batchSize: 3, keep: ['pooler'] });
    expect(again.shards.map((s) => s.skipped)).toEqual([true, true, true]);
    expect(statSync(shardFile(out, 'photos')).mtimeMs).toBe(mtime);
    const other = await tokenize(model, [join(dir, 'shard-000.tar')], out, { batchSize: 4 });
    expect(other.shards[0].skipped).toBe(false);
    expect((await readShard(shardFile(out, 'shard-000'))).tensors.pooler_output).toBeUndefined();
    // Two sources with the same shard name are refused before any work.
    write(join(dir, 'x', 'list.txt'), 'imgs/q.jpg\n');
    await expect(tokenize(model, [join(dir, 'list.txt'), join(dir, 'x', 'list.txt')], out)).rejects.toThrow(/same as that of/);
  });
});

describe('two writers of one shard', () => {
  it('both rename a complete file: the shard is whole and the same as one writer makes', async () => {
    const dir = tmp();
    const path = join(dir, 'race.tar');
    writeShard(path, 500, 10);
    await tokenize(model, [path], join(dir, 'one'), { batchSize: 4 });
    const out = join(dir, 'two');
    // A killed writer's temporary file: removed once old enough, a fresh one (a live writer's) kept.
    const stale = join(out, '.race.tokens.safetensors.tmp-1-dead');
    const fresh = join(out, '.race.tokens.safetensors.tmp-2-live');
    write(stale, 'partial');
    write(fresh, 'partial');
    utimesSync(stale, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    const [a, b] = await Promise.all([tokenizeSource(model, openSource(path), out, { batchSize: 4 }), tokenizeSource(model, openSource(path), out, { batchSize: 3 })]);
    expect([a.skipped, b.skipped]).toEqual([false, false]);
    expect(readFileSync(shardFile(out, 'race')).equals(readFileSync(shardFile(join(dir, 'one'), 'race')))).toBe(true);
    expect(readdirSync(out).sort()).toEqual(['.race.tokens.safetensors.tmp-2-live', 'race.tokens.safetensors']);
  });
});

/** Runs the dataset runner to completion. */
function run(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [runner, ...args], { env: runnerEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (status) => done({ status, stderr }));
  });
}

/** Starts the runner; once `file` exists sends `signal`; resolves with the exit. */
function runUntil(args: string[], file: string, signal: NodeJS.Signals): Promise<{ status: number | null; signal: NodeJS.Signals | null; stderr: string; sent: boolean }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [runner, ...args], { env: runnerEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let sent = false;
    p.stderr.on('data', (d) => (stderr += d));
    const poll = setInterval(() => {
      if (!existsSync(file)) return;
      clearInterval(poll);
      sent = p.kill(signal);
    }, 5);
    p.on('exit', (status, sig) => {
      clearInterval(poll);
      done({ status, signal: sig, stderr, sent });
    });
  });
}

describe('tokenize stopped midway', () => {
  let dir: string;
  let sources: string[];
  let ref: string;
  beforeAll(async () => {
    dir = tmp();
    sources = [writeShard(join(dir, 'a.tar'), 0, 4), writeShard(join(dir, 'b.tar'), 100, 40), writeShard(join(dir, 'c.tar'), 200, 12)].map((_, i) => join(dir, `${'abc'[i]}.tar`));
    ref = join(dir, 'ref');
    await tokenize(model, sources, ref, { batchSize: 2 });
  });

  const same = (out: string) => {
    for (const name of ['a', 'b', 'c']) expect(readFileSync(shardFile(out, name)).equals(readFileSync(shardFile(ref, name))), name).toBe(true);
    expect(readFileSync(join(out, 'manifest.json'), 'utf8')).toBe(readFileSync(join(ref, 'manifest.json'), 'utf8'));
  };
  /** Shards at their final name are complete (readable), whatever else the stop left. */
  const complete = async (out: string) => {
    for (const f of readdirSync(out).filter((f) => f.endsWith('.tokens.safetensors') && !f.startsWith('.'))) await readShard(join(out, f));
  };

  it('SIGKILL after the first shard, then a rerun: the same shards as an uninterrupted run', async () => {
    const out = join(dir, 'killed');
    const args = ['tokenize', '--model', MODEL, '--out', out, '--batch-size', '2', ...sources];
    const r = await runUntil(args, shardFile(out, 'a'), 'SIGKILL');
    expect(r.signal).toBe('SIGKILL');
    expect(existsSync(shardFile(out, 'c'))).toBe(false);
    await complete(out);
    const again = await run(args);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/a\.tokens\.safetensors: already complete, skipped/);
    same(out);
  });

  it('SIGINT stops after the current batch without a partial shard; a rerun finishes', async () => {
    const out = join(dir, 'interrupted');
    const args = ['tokenize', '--model', MODEL, '--out', out, '--batch-size', '2', ...sources];
    const r = await runUntil(args, shardFile(out, 'a'), 'SIGINT');
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/interrupted: stopped after \d+ images; (.*b\.tar was not finished|2 source\(s\) not started)/);
    expect(existsSync(shardFile(out, 'b'))).toBe(false);
    expect(readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
    await complete(out);
    const again = await run(args);
    expect(again.status, again.stderr).toBe(0);
    same(out);
  });
});
