// Loading skips weights the model does not use: a text-tower token embedding larger than the
// adapter's storage binding limit (the real checkpoint's is 1.18 GB; lavapipe's limit is 128 MiB)
// is listed as unused and never read or uploaded.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numel, type TensorInfo, type TensorSource } from '../src/core/tensor-source.js';
import { DualToken } from '../src/model/dualtoken.js';
import { convertSource } from '../src/node/convert.js';
import { openSafetensorsFile } from '../src/node/files.js';
import { openModelFiles } from '../src/node/load.js';
import { loadShaders } from '../src/node/shaders.js';
import { testGpu } from './helpers/gpu.js';

const fixture = (path: string) => fileURLToPath(new URL(`./fixtures/golden/${path}`, import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'load-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const BIG = 'siglip_model.text_model.embeddings.token_embedding.weight';
const BIG_SHAPE = [819_200, 64]; // f32: 200 MiB (the tiny model's hidden size is 64)
const BIG_BYTES = numel(BIG_SHAPE) * 4;

/** The tiny model's tensors, with the token embedding replaced by a 200 MiB one; records what is read. */
class BigEmbeddingSource implements TensorSource {
  readonly reads: string[] = [];
  constructor(
    private readonly inner: TensorSource,
    private readonly bigData?: () => Uint8Array,
  ) {}
  get label(): string {
    return `${this.inner.label} (+200 MiB token embedding)`;
  }
  names(): string[] {
    return this.inner.names();
  }
  info(name: string): TensorInfo | undefined {
    if (name === BIG) return { name, dtype: 'F32', shape: BIG_SHAPE, byteLength: BIG_BYTES };
    return this.inner.info(name);
  }
  async read(name: string): Promise<Uint8Array> {
    this.reads.push(name);
    if (name === BIG) {
      if (!this.bigData) throw new Error(`${this.label}: '${name}' must not be read`);
      return this.bigData();
    }
    return this.inner.read(name);
  }
  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}

/** A model folder (tiny config) whose model.safetensors holds the 200 MiB token embedding, written streaming. */
async function bigModelDir(): Promise<string> {
  const dir = mkdtempSync(join(tmp, 'model-'));
  for (const f of ['config.json', 'siglip_config.json']) copyFileSync(fixture(`tiny/${f}`), join(dir, f));
  const source = new BigEmbeddingSource(await openSafetensorsFile(fixture('tiny/model.safetensors')), () => new Uint8Array(BIG_BYTES));
  try {
    await convertSource(source, join(dir, 'model.safetensors'));
  } finally {
    await source.close();
  }
  return dir;
}

describe('weights over the storage binding limit', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await bigModelDir();
  });

  it('the 200 MiB token embedding is in the file and listed by DualToken.unusedTensors', async () => {
    const files = await openModelFiles(dir);
    try {
      const info = files.source.info(BIG)!;
      expect([info.dtype, info.shape, info.byteLength]).toEqual(['F32', BIG_SHAPE, BIG_BYTES]);
      expect(info.byteLength).toBeGreaterThan(128 * 2 ** 20);
      const unused = DualToken.unusedTensors(files.source, files.config);
      expect(unused).toContain(BIG);
      // The whole text tower is unused; the vision tower, quantizers and decoder are not.
      const text = files.source.names().filter((n) => n.startsWith('siglip_model.text_model.'));
      expect(unused).toEqual(expect.arrayContaining(text));
      for (const used of ['siglip_model.vision_model.embeddings.patch_embedding.weight', 'quantizer_pix.codebooks.0.weight', 'decoder.conv_out.weight', 'post_quant_conv.conv1.weight']) {
        expect(files.source.info(used), used).toBeDefined();
        expect(unused, used).not.toContain(used);
      }
    } finally {
      await files.source.close?.();
    }
  });

  it('DualToken.create never reads it (so it is never uploaded), on any adapter', async () => {
    const { gpu } = await testGpu();
    const files = await openModelFiles(dir);
    const source = new BigEmbeddingSource(files.source); // reading the big tensor throws
    const model = await DualToken.create(gpu, loadShaders(), files.config, source);
    try {
      expect(source.reads).not.toContain(BIG);
      const unused = new Set(DualToken.unusedTensors(source, files.config));
      expect(source.reads.filter((n) => unused.has(n))).toEqual([]);
      console.log(
        `adapter maxStorageBufferBindingSize ${(gpu.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB; ` +
          `loaded ${source.reads.length} tensors, skipped ${unused.size} (incl. the ${BIG_BYTES / 2 ** 20} MiB token embedding)`,
      );
    } finally {
      model.dispose();
      await source.close();
    }
  });
});
