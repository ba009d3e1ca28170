// The text row of `dualtoken bench` (src/node/bench.ts --text) and the synthetic text weights it
// runs on at the real size (src/model/synthetic.ts, shapes.ts textShapes, presets.ts text config).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe as suite, expect, it } from 'vitest';
import { parseConfig, parseTextConfig } from '../src/core/config.js';
import { OFFICIAL_CONFIGS, OFFICIAL_TEXT_CONFIGS } from '../src/model/presets.js';
import { textShapes } from '../src/model/shapes.js';
import { SyntheticSource } from '../src/model/synthetic.js';
import { TOKEN_EMBEDDING } from '../src/model/text.js';
import { benchCommand } from '../src/node/bench.js';
import { openModelFiles } from '../src/node/load.js';
import { caseDir } from './helpers/golden.js';

suite('synthetic text weights', () => {
  it('textShapes names every text tensor of the tiny checkpoint with its shape', async () => {
    const files = await openModelFiles(join(caseDir('tiny'), 'model.safetensors'));
    try {
      const shapes = textShapes(files.config);
      const inFile = files.source.names().filter((n) => n.startsWith('siglip_model.text_model.') || n === 'siglip_model.logit_scale' || n === 'siglip_model.logit_bias');
      expect([...shapes.keys()].sort()).toEqual(inFile.sort());
      for (const n of inFile) expect(shapes.get(n)).toEqual(files.source.info(n)!.shape);
    } finally {
      await files.source.close?.();
    }
  });

  it('the so400m preset text config; the token table is served by row without being materialised', async () => {
    const config = parseConfig(OFFICIAL_CONFIGS.siglip_384_rvq8, undefined, 'preset');
    config.text = parseTextConfig(OFFICIAL_TEXT_CONFIGS.siglip_384_rvq8, 'preset');
    expect(config.text).toMatchObject({ hiddenSize: 1152, numLayers: 27, numHeads: 16, intermediateSize: 4304, vocabSize: 256000, maxPositionEmbeddings: 64 });
    const src = new SyntheticSource(config);
    const info = src.info(TOKEN_EMBEDDING)!;
    expect(info.shape).toEqual([256000, 1152]);
    expect(info.byteLength).toBe(256000 * 1152 * 4);
    const row = 1152 * 4;
    const heap0 = process.memoryUsage().arrayBuffers;
    const a = new Float32Array((await src.readRange(TOKEN_EMBEDDING, 255999 * row, row)).slice().buffer);
    const b = new Float32Array((await src.readRange(TOKEN_EMBEDDING, 255998 * row, 2 * row)).slice().buffer);
    expect(process.memoryUsage().arrayBuffers - heap0).toBeLessThan(50e6); // no 1.18 GB table
    expect(a.length).toBe(1152);
    expect(Array.from(b.subarray(1152))).toEqual(Array.from(a)); // the same row, however it is asked for
    expect(Array.from(a).every(Number.isFinite)).toBe(true);
    const std = Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    expect(std).toBeGreaterThan(0.5 / Math.sqrt(1152));
    expect(std).toBeLessThan(2 / Math.sqrt(1152));
    // An unaligned range is the matching slice of the rows around it.
    const c = await src.readRange(TOKEN_EMBEDDING, 255998 * row + 8, row);
    expect(Array.from(new Uint8Array(c))).toEqual(Array.from(new Uint8Array(b.buffer).subarray(8, 8 + row)));
    await expect(src.readRange(TOKEN_EMBEDDING, 256000 * row, 4)).rejects.toThrow(/outside/);
  });

  it('read() of a small table equals its rows by readRange', async () => {
    const files = await openModelFiles(join(caseDir('tiny'), 'model.safetensors'));
    await files.source.close?.();
    const src = new SyntheticSource(files.config, 7);
    const [V, C] = src.info(TOKEN_EMBEDDING)!.shape;
    const whole = await src.read(TOKEN_EMBEDDING);
    expect(whole.byteLength).toBe(V * C * 4);
    const r = await src.readRange(TOKEN_EMBEDDING, 5 * C * 4, 3 * C * 4);
    expect(Array.from(r)).toEqual(Array.from(whole.subarray(5 * C * 4, 8 * C * 4)));
  });
});

suite('bench --text', () => {
  it('runs the text row in chunks on the tiny model and writes it to the JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dualtoken-bench-text-'));
    const log = console.log;
    const lines: string[] = [];
    console.log = (...a: unknown[]) => void lines.push(a.join(' '));
    try {
      const json = join(dir, 'bench.json');
      await benchCommand({ model: caseDir('tiny'), preset: 'siglip_384_rvq8', batches: [], reps: 1, profile: false, text: true, textOnly: true, textPrompts: 40, json });
      const r = JSON.parse(readFileSync(json, 'utf8')) as { text: { prompts: number; chunk: number; length: number; promptsPerS: number; peakMB: number; heldMB: number; weightsMB: number } };
      expect(r.text.prompts).toBe(40);
      expect(r.text.length).toBe(16);
      expect(r.text.chunk).toBe(32);
      expect(r.text.promptsPerS).toBeGreaterThan(0);
      expect(r.text.weightsMB).toBeGreaterThan(0);
      expect(r.text.peakMB).toBeGreaterThanOrEqual(r.text.heldMB);
      expect(lines.some((l) => /prompts\/s/.test(l))).toBe(true);
    } finally {
      console.log = log;
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
