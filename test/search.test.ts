// dualtoken search (src/node/search-command.ts) on the tiny golden model: the ranking equals the
// one from classify's logits for the same query, the second run takes every image embedding from
// the cache (nothing computed, nothing rewritten), a changed file is recomputed alone, and --cache
// names another file.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe as suite, expect, it } from 'vitest';
import { MemoryReader } from '../src/core/bytes.js';
import { toFloat32 } from '../src/core/dtype.js';
import type { Gpu } from '../src/core/gpu.js';
import { openSafetensors } from '../src/core/safetensors.js';
import { parseArgs, type ParsedArgs } from '../src/node/args.js';
import { decodeImage } from '../src/node/decode.js';
import { createNodeGpu } from '../src/node/gpu.js';
import { loadDualToken } from '../src/node/load.js';
import { DEFAULT_CACHE_NAME, searchImages } from '../src/node/search-command.js';
import { classifyCommand, type TextCommandContext } from '../src/node/text-commands.js';
import { FIXTURES, caseDir } from './helpers/golden.js';

const VALUE_FLAGS = ['model', 'images', 'query', 'cache', 'top', 'batch-size', 'tokenizer', 'labels', 'out', 'template'];
const SWITCHES = ['quiet'];
const TOKENIZER = join(FIXTURES, 'tokenizer', 'tiny-tokenizer.json');

let gpu: Gpu;
beforeAll(async () => {
  gpu = await createNodeGpu();
});
afterAll(() => gpu.destroy());

const ctx = (argv: string[]): TextCommandContext => ({
  argv,
  openModel: (args) => loadDualToken(args.flags.get('model')!, { gpu }),
  readPixelValues: async () => {
    throw new Error('not used');
  },
  readImage: (path) => decodeImage(readFileSync(path), path),
});
const args = (command: string, argv: string[]): ParsedArgs => parseArgs([command, ...argv], VALUE_FLAGS, SWITCHES);

/** A w x h PNG: a colour gradient with a seed-dependent tint. */
function png(path: string, seed: number, w = 48, h = 40): void {
  const p = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      p.data[i] = (x * 5 + seed * 70) & 255;
      p.data[i + 1] = (y * 6 + seed * 30) & 255;
      p.data[i + 2] = ((x ^ y) * 3 + seed * 110) & 255;
      p.data[i + 3] = 255;
    }
  }
  writeFileSync(path, PNG.sync.write(p));
}

suite('search: rank a folder by a text query, embeddings cached', () => {
  it('ranks as classify does and reuses the cache', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dualtoken-search-'));
    try {
      const folder = join(dir, 'images');
      mkdirSync(join(folder, 'sub'), { recursive: true });
      const files = ['a.png', 'b.png', 'c.png', 'sub/d.png', 'sub/e.png'];
      files.forEach((f, i) => png(join(folder, f), i + 1));
      writeFileSync(join(folder, 'notes.txt'), 'not an image');
      const model = caseDir('tiny');
      const query = 'a photo of a red car.';
      const argv = ['--model', model, '--images', folder, '--query', query, '--tokenizer', TOKENIZER, '--batch-size', '2', '--quiet'];

      const first = await searchImages(args('search', argv), ctx(argv));
      expect(first.computed).toBe(files.length);
      expect(first.reused).toBe(0);
      expect(first.wroteCache).toBe(true);
      expect(first.cachePath).toBe(join(folder, DEFAULT_CACHE_NAME));
      expect(existsSync(first.cachePath)).toBe(true);
      expect(first.ranking.map((h) => h.path).sort()).toEqual([...files].sort());

      // classify's logits of the same images against the same text (one label, no template).
      const out = join(dir, 'cls.safetensors');
      const cargv = ['--model', model, ...files.map((f) => join(folder, f)), '--labels', query, '--tokenizer', TOKENIZER, '--out', out, '--quiet'];
      await classifyCommand(args('classify', cargv), ctx(cargv));
      const st = await openSafetensors(new MemoryReader(readFileSync(out), out));
      const logits = toFloat32(await st.read('logits_per_image'), 'F32', out); // [B, 1]
      const expected = files.map((f, i) => ({ path: f, logit: logits[i] })).sort((a, b) => b.logit - a.logit);
      expect(first.ranking.map((h) => h.path)).toEqual(expected.map((e) => e.path));
      first.ranking.forEach((h, i) => expect(Math.abs(h.logit - expected[i].logit)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(expected[i].logit))));
      first.ranking.forEach((h) => expect(h.prob).toBeCloseTo(1 / (1 + Math.exp(-h.logit)), 6));

      // Second run: every embedding from the cache, nothing rewritten, the same ranking.
      const second = await searchImages(args('search', argv), ctx(argv));
      expect(second.reused).toBe(files.length);
      expect(second.computed).toBe(0);
      expect(second.wroteCache).toBe(false);
      expect(second.ranking).toEqual(first.ranking);

      // A changed file is recomputed alone; a removed one leaves the cache.
      png(join(folder, 'b.png'), 9, 50, 40);
      rmSync(join(folder, 'sub', 'e.png'));
      const third = await searchImages(args('search', argv), ctx(argv));
      expect(third.computed).toBe(1);
      expect(third.reused).toBe(files.length - 2);
      expect(third.wroteCache).toBe(true);
      expect(third.ranking.length).toBe(files.length - 1);

      // --cache FILE elsewhere.
      const other = join(dir, 'other.safetensors');
      const fourth = await searchImages(args('search', [...argv, '--cache', other]), ctx(argv));
      expect(fourth.cachePath).toBe(other);
      expect(fourth.computed).toBe(files.length - 1);
      expect(existsSync(other)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
