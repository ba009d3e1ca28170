// npm run demo: the bundled sample image through the bundled test model, with progress and
// timings per stage; writes the codes and the reconstruction into an output folder.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeSafetensors } from '../core/safetensors.js';
import { decodeImage, encodePng } from './decode.js';
import { loadDualToken, locateModel } from './load.js';
import { checkNotInputs, checkWritableFolder, writeFile } from './output.js';
import { Progress } from './progress.js';

const WEIGHTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'weights');

async function timed<T>(stages: [string, number][], name: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await fn();
  stages.push([name, performance.now() - start]);
  return result;
}

export async function demoCommand(outDir: string, quiet: boolean, adapter?: string): Promise<void> {
  const modelDir = join(WEIGHTS, 'tiny');
  const imagePath = join(WEIGHTS, 'sample.png');
  const log = (s: string) => console.log(s);
  log(`DualToken on WebGPU: demo`);
  log(`model: ${modelDir}`);
  log(`  This is the small public TEST model (the 'tiny' golden case: the official architecture at toy`);
  log(`  sizes with seeded random weights), not a trained tokenizer: its codes are real computations,`);
  log(`  but its reconstruction does not resemble the input.`);
  const outputs = ['codes.safetensors', 'codes.json', 'recon.png', 'input.png'].map((name) => join(outDir, name));
  checkNotInputs(outputs, [imagePath, ...locateModel(modelDir).files]);
  checkWritableFolder(outDir);
  const stages: [string, number][] = [];
  const progress = new Progress('loading weights', 0, quiet, process.stderr, 'B');
  const model = await timed(stages, 'load weights', () =>
    loadDualToken(modelDir, { adapter, silenceAdapterWarnings: true, log: quiet ? undefined : (line) => console.error(line), onProgress: (p) => progress.update(p.bytes, `${p.tensors}/${p.totalTensors} tensors`, p.totalBytes) }),
  );
  try {
    log(`adapter: ${model.gpu.describe()}`);
    const image = await timed(stages, 'read image', async () => decodeImage(readFileSync(imagePath), imagePath));
    log(`image: ${imagePath} (${image.width}x${image.height}) -> ${model.imageSize}x${model.imageSize}`);
    const first = await timed(stages, 'encode (first run, compiles kernels)', () => model.encodeImages([image]));
    const codes = await timed(stages, 'encode (steady)', () => model.encodeImages([image]));
    if (codes.pixelCodes.some((c, i) => c !== first.pixelCodes[i])) throw new Error('demo: two encodes of the same image gave different codes');
    await timed(stages, 'decode (first run, compiles kernels)', () => model.decode(codes.pixelCodes, 1));
    const recon = await timed(stages, 'decode (steady)', () => model.decode(codes.pixelCodes, 1));
    const c = model.config;
    const [h, w, D] = c.quantPix.codeShape;
    const [hs, ws, Ds] = c.quantSem.codeShape;
    await timed(stages, 'write outputs', async () => {
      writeFile(
        outputs[0],
        encodeSafetensors({
          code_pix: { dtype: 'I32', shape: [1, h, w, D], data: codes.pixelCodes },
          code_sem: { dtype: 'I32', shape: [1, hs, ws, Ds], data: codes.semanticCodes },
          z_q_sem: { dtype: 'F32', shape: [1, hs * ws, c.vision.hiddenSize], data: codes.semanticFeatures },
          pooler_output: { dtype: 'F32', shape: [1, c.vision.hiddenSize], data: codes.embedding },
        }),
      );
      writeFile(outputs[1], JSON.stringify({ shape: [1, h, w, D], pixel: Array.from(codes.pixelCodes), semantic_shape: [1, hs, ws, Ds], semantic: Array.from(codes.semanticCodes) }));
      writeFile(outputs[2], encodePng(recon.images[0]));
      writeFile(outputs[3], readFileSync(imagePath));
    });
    log(`pixel codes [${h},${w},${D}], first token: ${Array.from(codes.pixelCodes.subarray(0, D)).join(' ')}`);
    log(`semantic codes [${hs},${ws},${Ds}], first token: ${Array.from(codes.semanticCodes.subarray(0, Ds)).join(' ')}`);
    log(`embedding: ${c.vision.hiddenSize} floats, |e| = ${Math.hypot(...codes.embedding).toFixed(4)}`);
    log(`\ntimings:`);
    for (const [name, ms] of stages) log(`  ${name.padEnd(38)} ${ms.toFixed(1).padStart(9)} ms`);
    const ms = new Map(stages);
    const firstRun = (stage: string) => ms.get(`${stage} (first run, compiles kernels)`)! - ms.get(`${stage} (steady)`)!;
    log(`  ${'first-run cost, encode + decode'.padEnd(38)} ${(firstRun('encode') + firstRun('decode')).toFixed(1).padStart(9)} ms  (once per machine: the shader cache keeps the kernels)`);
    log(`\nwrote ${resolve(outDir)}/{codes.safetensors, codes.json, recon.png, input.png}`);
    log(`\nWith the official checkpoint (a folder holding its config.json and the .pt or .safetensors):`);
    log(`  npx dualtoken reconstruct --model /path/to/DualToken-checkpoint your-image.jpg --out recon.png`);
  } finally {
    model.dispose();
  }
}
