// The text tower and zero-shot classification through the public API against
// text_expected.safetensors of both golden cases (see the golden README's "Text tower"): hidden
// states, last hidden state, text_embeds_raw / text_embeds, and logits / probs against the
// DualToken image embeddings of expected.safetensors' pixel_values. Then the same comparison on
// deliberately wrong towers (a causal mask, pooling position 0) to show the tolerances catch them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe as suite, expect, it } from 'vitest';
import type { Gpu } from '../src/core/gpu.js';
import type { TensorSource } from '../src/core/tensor-source.js';
import { DualToken } from '../src/model/dualtoken.js';
import { TEXT_CHUNK, normalizeRows } from '../src/model/text-model.js';
import { TOKEN_EMBEDDING } from '../src/model/text.js';
import { createNodeGpu } from '../src/node/gpu.js';
import { openModelFiles } from '../src/node/load.js';
import { loadShaders } from '../src/node/shaders.js';
import { FIXTURES, Golden, GOLDEN_CASES, REL_TO_MAX, caseDir, compareFloat, describe, type GoldenCase } from './helpers/golden.js';
import { relErr } from './helpers/compare.js';
import { MemoryReader } from '../src/core/bytes.js';
import { toFloat32, toInt32 } from '../src/core/dtype.js';
import { encodeSafetensors, openSafetensors } from '../src/core/safetensors.js';
import { MergedSource } from '../src/core/sharded.js';
import { parseArgs, type ParsedArgs } from '../src/node/args.js';
import { decodeImage } from '../src/node/decode.js';
import { loadDualToken } from '../src/node/load.js';
import { classifyCommand, encodeTextCommand, type TextCommandContext } from '../src/node/text-commands.js';

/** probs sit near sigmoid(logit_bias) (~1e-4): the README compares them absolutely, within 1e-5. */
const PROBS_ABS = 1e-5;

let gpu: Gpu;
beforeAll(async () => {
  gpu = await createNodeGpu();
});
afterAll(() => gpu.destroy());

async function open(name: GoldenCase): Promise<{ model: DualToken; source: TensorSource }> {
  const files = await openModelFiles(join(caseDir(name), 'model.safetensors'));
  // The text weights load at the first text call, from the source given to create (kept open here).
  const model = await DualToken.create(gpu, loadShaders(), files.config, files.source, { keepTaps: true });
  return { model, source: files.source };
}

for (const name of GOLDEN_CASES) {
  suite(`text tower, golden case ${name}`, () => {
    it('hidden states, text embeddings, logits and probs match text_expected.safetensors', async () => {
      const golden = await Golden.open(name, 'text_expected.safetensors');
      const image = await Golden.open(name);
      const { model, source } = await open(name);
      try {
        expect(model.weights.has('siglip_model.text_model.head.weight')).toBe(false); // image-only until text is used
        const ids = (await golden.get('input_ids')).data as Int32Array;
        const [T, L] = (await golden.get('input_ids')).shape;
        expect(L).toBe(model.config.text!.maxPositionEmbeddings);
        const failures: string[] = [];
        const check = async (tensor: string, got: ArrayLike<number>) => {
          const c = compareFloat(`${name} ${tensor}`, got, await golden.get(tensor));
          if (!(c.relToMax <= REL_TO_MAX)) failures.push(describe(c));
        };
        const layers = model.config.text!.numLayers;
        const taps = [...Array.from({ length: layers + 1 }, (_, i) => `text_hidden_states.${i}`), 'text_last_hidden_state'];
        const run = await model.text().run(new Int32Array(ids), T, { taps });
        for (const t of taps) await check(t, run.taps.get(t)!);
        await check('text_embeds_raw', run.raw);

        const enc = await model.encodeText(new Int32Array(ids), T);
        await check('text_embeds_raw', enc.textEmbedsRaw);
        await check('text_embeds', enc.textEmbeds);

        const pv = await image.get('pixel_values');
        const cls = await model.classify({ pixelValues: pv.data as Float32Array, batch: pv.shape[0] }, { inputIds: new Int32Array(ids), count: T });
        await check('image_embeds', cls.imageEmbeds);
        await check('text_embeds', cls.textEmbeds);
        await check('logits_per_image', cls.logitsPerImage);
        const probs = await golden.get('probs');
        const p = compareFloat(`${name} probs`, cls.probs, probs);
        console.log(`${name} probs: max |diff| ${p.maxAbs.toExponential(2)} (tolerance ${PROBS_ABS} absolute; ${p.relToMax.toExponential(2)} rel_to_max)`);
        if (!(p.maxAbs <= PROBS_ABS && p.relToMax <= REL_TO_MAX)) failures.push(describe(p));
        expect(failures).toEqual([]);

        // More prompts than one run takes (TEXT_CHUNK): runs in chunks, same embeddings per prompt.
        const reps = Math.ceil((TEXT_CHUNK + 1) / T);
        const many = new Int32Array(reps * T * L);
        for (let r = 0; r < reps; r++) many.set(ids, r * T * L);
        const big = await model.encodeText(many, reps * T);
        const C = enc.dim;
        let worst = 0;
        for (let r = 0; r < reps; r++) worst = Math.max(worst, relErr(big.textEmbeds.subarray(r * T * C, (r + 1) * T * C), enc.textEmbeds).rel);
        console.log(`${name}: ${reps * T} prompts in chunks of ${TEXT_CHUNK}: worst rel_to_max vs the ${T}-prompt run ${worst.toExponential(2)}`);
        expect(worst).toBeLessThanOrEqual(REL_TO_MAX);
      } finally {
        model.dispose();
        await source.close?.();
      }
    });

    it('would catch a causal mask or another pooled position (wrong variants fail the comparison)', async () => {
      const golden = await Golden.open(name, 'text_expected.safetensors');
      const { model, source } = await open(name);
      try {
        const { shape, data } = await golden.get('input_ids');
        const T = shape[0];
        const refEmbeds = await golden.get('text_embeds');
        const C = refEmbeds.shape[1];
        const right = await model.text().run(new Int32Array(data), T);
        const ok = relErr(normalizeRows(right.raw, C), refEmbeds.data).rel;
        for (const [what, variant] of [['causal attention', { causal: true }], ['pooling position 0', { poolIndex: 0 }]] as const) {
          const wrong = await model.text().run(new Int32Array(data), T, { variant });
          const e = relErr(normalizeRows(wrong.raw, C), refEmbeds.data);
          // Per sequence, as the README's table: max |diff| of the normalised text_embeds.
          const perSeq = Array.from({ length: T }, (_, t) => relErr(normalizeRows(wrong.raw, C).subarray(t * C, (t + 1) * C), refEmbeds.data.subarray(t * C, (t + 1) * C)).maxAbs.toExponential(2));
          console.log(`${name} wrong variant (${what}): text_embeds rel_to_max ${e.rel.toExponential(2)} (right tower ${ok.toExponential(2)}); per-sequence max|diff| ${perSeq.join(' ')}`);
          expect(e.rel).toBeGreaterThan(REL_TO_MAX * 100);
        }
        expect(ok).toBeLessThanOrEqual(REL_TO_MAX);
      } finally {
        model.dispose();
        await source.close?.();
      }
    });
  });
}

suite('text tower on other kernel variants (the GPU defaults and GPU-shaped ones, run here on this adapter)', () => {
  for (const kernels of [{ attention: 'lane' }, { attention: 'sg' }, { attention: 'wg', linear: 'wg_tiled' }, { linear: 'tiled' }]) {
    it(`${JSON.stringify(kernels)}: text_embeds and the pooled row match tiny's golden`, async () => {
      const files = await openModelFiles(join(caseDir('tiny'), 'model.safetensors'));
      const model = await DualToken.create(gpu, loadShaders(), files.config, files.source, { kernels });
      try {
        const golden = await Golden.open('tiny', 'text_expected.safetensors');
        const ids = await golden.get('input_ids');
        const enc = await model.encodeText(new Int32Array(ids.data), ids.shape[0]);
        const c = compareFloat(`tiny ${JSON.stringify(kernels)} text_embeds_raw`, enc.textEmbedsRaw, await golden.get('text_embeds_raw'));
        expect(c.relToMax).toBeLessThanOrEqual(REL_TO_MAX);
      } finally {
        model.dispose();
        await files.source.close?.();
      }
    });
  }
});

suite('text commands (src/node/text-commands.ts, as cli.ts will call them)', () => {
  const VALUE_FLAGS = ['model', 'pixel-values', 'out', 'adapter', 'input-ids', 'labels', 'labels-file', 'template', 'top', 'tokenizer'];
  const SWITCHES = ['quiet'];
  const ctx = (argv: string[]): TextCommandContext => ({
    argv,
    openModel: (args) => loadDualToken(args.flags.get('model')!, { gpu }),
    readPixelValues: async (path) => {
      const st = await openSafetensors(new MemoryReader(readFileSync(path), path));
      const info = st.info('pixel_values')!;
      return { data: toFloat32(await st.read('pixel_values'), info.dtype, path), batch: info.shape[0] };
    },
    readImage: (path) => decodeImage(readFileSync(path), path),
  });
  const run = async (command: string, argv: string[], fn: (a: ParsedArgs, c: TextCommandContext) => Promise<void>) => fn(parseArgs([command, ...argv], VALUE_FLAGS, SWITCHES), ctx(argv));
  const readOut = async (path: string, name: string) => {
    const st = await openSafetensors(new MemoryReader(readFileSync(path), path));
    const info = st.info(name)!;
    return { shape: info.shape, data: info.dtype === 'I32' ? toInt32(await st.read(name), info.dtype, name) : toFloat32(await st.read(name), info.dtype, name) };
  };

  it('encode-text --input-ids and classify --pixel-values --input-ids reproduce the tiny goldens; classify --labels with a tokenizer ranks per image', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dualtoken-text-'));
    try {
      const golden = await Golden.open('tiny', 'text_expected.safetensors');
      const ids = await golden.get('input_ids');
      const pv = await (await Golden.open('tiny')).get('pixel_values');
      writeFileSync(join(dir, 'ids.safetensors'), encodeSafetensors({ input_ids: { dtype: 'I32', shape: ids.shape, data: ids.data as Int32Array } }));
      writeFileSync(join(dir, 'pv.safetensors'), encodeSafetensors({ pixel_values: { dtype: 'F32', shape: pv.shape, data: pv.data as Float32Array } }));
      const model = caseDir('tiny');
      await run('encode-text', ['--model', model, '--input-ids', join(dir, 'ids.safetensors'), '--out', join(dir, 'te.safetensors'), '--quiet'], encodeTextCommand);
      const failures: string[] = [];
      for (const [file, tensor] of [['te', 'text_embeds'], ['te', 'text_embeds_raw']] as const) {
        const c = compareFloat(`cli ${tensor}`, (await readOut(join(dir, `${file}.safetensors`), tensor)).data, await golden.get(tensor));
        if (!(c.relToMax <= REL_TO_MAX)) failures.push(describe(c));
      }
      await run('classify', ['--model', model, '--pixel-values', join(dir, 'pv.safetensors'), '--input-ids', join(dir, 'ids.safetensors'), '--top', '2', '--out', join(dir, 'cls.safetensors'), '--quiet'], classifyCommand);
      for (const tensor of ['logits_per_image', 'probs', 'image_embeds', 'text_embeds']) {
        const c = compareFloat(`cli ${tensor}`, (await readOut(join(dir, 'cls.safetensors'), tensor)).data, await golden.get(tensor));
        if (!(c.relToMax <= REL_TO_MAX)) failures.push(describe(c));
      }
      expect(failures).toEqual([]);
      const tok = join(FIXTURES, 'tokenizer', 'tiny-tokenizer.json');
      await run('classify', ['--model', model, join(caseDir('tiny'), 'input_0.png'), '--labels', 'cat', 'dog', 'red car', '--template', 'a photo of a {}.', '--tokenizer', tok, '--top', '3', '--quiet'], classifyCommand);
      await expect(run('classify', ['--model', model, join(caseDir('tiny'), 'input_0.png'), '--labels', 'cat', '--quiet'], classifyCommand)).rejects.toThrow(/tokenizer/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

suite('text weights: read lazily, token rows by range', () => {
  /** A source that records what is read, optionally without readRange (as a .pt checkpoint). */
  function recording(src: TensorSource, ranges: boolean) {
    const reads: string[] = [];
    const rangeReads: string[] = [];
    const wrapped: TensorSource = {
      label: src.label,
      names: () => src.names(),
      info: (n) => src.info(n),
      read: (n) => {
        reads.push(n);
        return src.read(n);
      },
      ...(ranges ? { readRange: (n: string, o: number, l: number) => (rangeReads.push(`${n}@${o}+${l}`), src.readRange!(n, o, l)) } : {}),
    };
    return { wrapped, reads, rangeReads };
  }

  for (const ranges of [true, false]) {
    it(`image-only use reads no text tensor; encodeText reads ${ranges ? 'only the rows of the ids used' : 'the table once (no range reads)'}`, async () => {
      const files = await openModelFiles(join(caseDir('tiny'), 'model.safetensors'));
      const rec = recording(files.source, ranges);
      const model = await DualToken.create(gpu, loadShaders(), files.config, rec.wrapped, {});
      try {
        const pv = await (await Golden.open('tiny')).get('pixel_values');
        await model.encode(pv.data as Float32Array, pv.shape[0]);
        expect(rec.reads.filter((n) => n.includes('text_model') || n.includes('logit_'))).toEqual([]);
        const golden = await Golden.open('tiny', 'text_expected.safetensors');
        const ids = (await golden.get('input_ids')).data as Int32Array;
        const enc = await model.encodeText(new Int32Array(ids), 5);
        const c = compareFloat('tiny text_embeds (recorded source)', enc.textEmbeds, await golden.get('text_embeds'));
        expect(c.relToMax).toBeLessThanOrEqual(REL_TO_MAX);
        const tableReads = rec.reads.filter((n) => n === TOKEN_EMBEDDING).length;
        console.log(`ranges ${ranges}: ${rec.rangeReads.length} row reads for ${new Set(ids).size} distinct ids, ${tableReads} whole-table reads`);
        if (ranges) {
          expect(tableReads).toBe(0);
          expect(rec.rangeReads.length).toBe(new Set(ids).size);
          expect(rec.rangeReads.every((r) => r.endsWith('+256'))).toBe(true); // one 64-float row each
        } else expect(tableReads).toBe(1);
        await model.encodeText(new Int32Array(ids.map((x) => (x + 1) % 100)), 5); // new ids: rows read, table not again
        if (!ranges) expect(rec.reads.filter((n) => n === TOKEN_EMBEDDING).length).toBe(1);
      } finally {
        model.dispose();
        await files.source.close?.();
      }
    });
  }
});

suite('text input and weights refused on one line', () => {
  it('an id outside the vocabulary, a wrong length, a non-finite token row, strings without a tokenizer', async () => {
    const files = await openModelFiles(join(caseDir('tiny'), 'model.safetensors'));
    const src = files.source;
    // Row 7 of the token embedding table holds a NaN.
    const bad: TensorSource = {
      label: src.label,
      names: () => src.names(),
      info: (n) => src.info(n),
      read: (n) => src.read(n),
      readRange: async (n, o, l) => {
        const bytes = new Uint8Array(await src.readRange!(n, o, l));
        if (n === TOKEN_EMBEDDING && o === 7 * 256) new Float32Array(bytes.buffer)[3] = NaN;
        return bytes;
      },
    };
    const model = await DualToken.create(gpu, loadShaders(), files.config, bad, {});
    try {
      const L = 16;
      await expect(model.encodeText(new Int32Array(L).fill(100), 1)).rejects.toThrow(/input_ids\[0,0\] = 100 is out of range for the 100-token vocabulary/);
      await expect(model.encodeText(new Int32Array(L + 1), 1)).rejects.toThrow(/input_ids has 17 values, \[1,16\] needs 16/);
      await expect(model.encodeText(new Int32Array(L).fill(7), 1)).rejects.toThrow(/token_embedding.weight' has a non-finite value \(NaN at index 451, row 7\)/);
      await expect(model.encodeText(['a cat'])).rejects.toThrow(/strings need a tokenizer/);
      const ok = await model.encodeText(new Int32Array(L).fill(1), 1);
      expect(ok.textEmbeds.every(Number.isFinite)).toBe(true);
    } finally {
      model.dispose();
      await src.close?.();
    }
  });
});

suite('TensorSource.readRange', () => {
  it('safetensors and merged shards read a byte range of one tensor; out-of-range reads are refused naming the tensor', async () => {
    const a = encodeSafetensors({ x: { dtype: 'F32', shape: [3, 2], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    const b = encodeSafetensors({ y: { dtype: 'BF16', shape: [2, 2], data: new Uint16Array([0x3f80, 0x4000, 0x4040, 0x4080]) } });
    const sa = await openSafetensors(new MemoryReader(a, 'a.safetensors'));
    const sb = await openSafetensors(new MemoryReader(b, 'b.safetensors'));
    const merged = new MergedSource('index.json', [sa, sb]);
    expect(Array.from(toFloat32(await merged.readRange('x', 8, 8), 'F32', 'x'))).toEqual([2, 3]);
    expect(Array.from(toFloat32(await merged.readRange('y', 4, 4), 'BF16', 'y'))).toEqual([3, 4]);
    await expect(sa.readRange!('x', 20, 8)).rejects.toThrow(/a.safetensors: tensor 'x': bytes 20..28 are outside its 24 bytes/);
    await expect(merged.readRange('z', 0, 4)).rejects.toThrow(/missing tensor 'z'/);
  });
});
