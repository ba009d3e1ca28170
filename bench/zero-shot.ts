// ImageNet-style zero-shot classification with the text tower: top-1 / top-5 accuracy over a
// labelled image folder, images/s, for users with the official checkpoint (siglip_config.json with
// its text_config and tokenizer.json beside the weights).
//
//   npm run bench:zero-shot -- --model DIR --images FOLDER [--labels-file F] [--templates photo|hf|clip7|FILE]
//                              [--tokenizer tokenizer.json] [--batch-size 8] [--limit N] [--json FILE]
//
// Labels: FOLDER/<class name>/*.jpg|jpeg|png (the class name is the folder's, '_' read as a
// space), or --labels-file F: one image per line, "relative/path<TAB>class name" (or
// "path,class name"), paths relative to FOLDER. The classes are the distinct names, sorted.
// Prompt templates ({} = the class name):
//   photo (default)  "a photo of a {}." : the base prompt of CLIP (Radford et al. 2021, the
//                    ImageNet prompt of its paper) that SigLIP's zero-shot evaluations build on.
//   hf               "This is a photo of {}." : the template of Hugging Face's SigLIP / SigLIP2
//                    model cards and the zero-shot-image-classification pipeline's SigLIP usage.
//   clip7            the 7-template ensemble selected in CLIP's "Prompt_Engineering_for_ImageNet"
//                    notebook (openai/CLIP): "itap of a {}.", "a bad photo of the {}.", "a origami {}.",
//                    "a photo of the large {}.", "a {} in a video game.", "art of the {}.",
//                    "a photo of the small {}.".
//   FILE             one template per line.
// With several templates, a class's text embedding is the mean of its prompts' normalised
// embeddings, normalised again (CLIP's ensembling). Scores are image_embed . class_embed (the
// sigmoid logits are a monotone function of it: the same ranking). Images are the DualToken
// image embedding (the MAP head over the quantized semantic path), as classify uses.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNodeGpu } from '../src/node/gpu.js';
import { openWeightsFile } from '../src/node/files.js';
import { readImage, writeFile } from '../src/node/io.js';
import { loadDualToken, locateModel } from '../src/node/load.js';
import { loadShaders, shaderDirs } from '../src/node/shaders.js';
import { findTokenizerFile, loadTokenizerFile } from '../src/node/tokenizer.js';
import { normalizeRows } from '../src/model/text-model.js';

export const TEMPLATES: Record<string, string[]> = {
  photo: ['a photo of a {}.'],
  hf: ['This is a photo of {}.'],
  clip7: ['itap of a {}.', 'a bad photo of the {}.', 'a origami {}.', 'a photo of the large {}.', 'a {} in a video game.', 'art of the {}.', 'a photo of the small {}.'],
};

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'); // dist-bench/bench -> repo
const IMAGE_EXT = /\.(jpe?g|png)$/i;

function flags(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument '${argv[i]}'`);
    const eq = argv[i].indexOf('=');
    if (eq > 0) m.set(argv[i].slice(2, eq), argv[i].slice(eq + 1));
    else m.set(argv[i].slice(2), argv[++i] ?? '');
  }
  return m;
}

/** (path, class) pairs: from the labels file, or FOLDER/<class>/<image>. */
function labelledImages(folder: string, labelsFile?: string): { path: string; label: string }[] {
  if (labelsFile) {
    return readFileSync(labelsFile, 'utf8')
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l.length > 0 && !l.startsWith('#'))
      .map((l, i) => {
        const m = /^([^\t,]+)[\t,]\s*(.+)$/.exec(l);
        if (!m) throw new Error(`${labelsFile}:${i + 1}: expected "path<TAB>class name"`);
        return { path: join(folder, m[1].trim()), label: m[2].trim() };
      });
  }
  const out: { path: string; label: string }[] = [];
  for (const c of readdirSync(folder).sort()) {
    const dir = join(folder, c);
    if (c.startsWith('.') || !statSync(dir).isDirectory()) continue;
    for (const f of readdirSync(dir).sort()) if (IMAGE_EXT.test(f) && !f.startsWith('.')) out.push({ path: join(dir, f), label: c.replace(/_/g, ' ') });
  }
  return out;
}

async function main(argv: string[]): Promise<void> {
  const f = flags(argv);
  const modelDir = f.get('model');
  const folder = f.get('images');
  if (!modelDir || !folder) throw new Error('usage: zero-shot --model DIR --images FOLDER [--labels-file F] [--templates photo|hf|clip7|FILE] [--tokenizer F] [--batch-size 8] [--limit N] [--json FILE]');
  const tname = f.get('templates') ?? 'photo';
  const templates = TEMPLATES[tname] ?? (existsSync(tname) ? readFileSync(tname, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0) : undefined);
  if (!templates || templates.length === 0 || templates.some((t) => !t.includes('{}'))) throw new Error(`--templates ${tname}: a set (${Object.keys(TEMPLATES).join(', ')}) or a file of templates with {}`);
  const batchSize = Number(f.get('batch-size') ?? '8');
  let items = labelledImages(folder, f.get('labels-file'));
  const limit = f.get('limit');
  if (limit !== undefined) items = items.slice(0, Number(limit));
  if (items.length === 0) throw new Error(`${folder}: no labelled images`);
  const classes = [...new Set(items.map((i) => i.label))].sort();
  const { config, weightsPath } = locateModel(modelDir);
  if (!config.text) throw new Error(`${modelDir}: no text_config (siglip_config.json with a text_config is needed beside config.json)`);
  const tokPath = f.get('tokenizer') ?? findTokenizerFile(modelDir);
  if (!tokPath) throw new Error(`${modelDir}: no tokenizer.json (give --tokenizer)`);

  const gpu = await createNodeGpu({ silenceAdapterWarnings: true });
  const model = await loadDualToken(modelDir, { gpu, shaders: loadShaders(shaderDirs(ROOT)) });
  const text = config.text;
  model.configureText({ textSource: () => openWeightsFile(weightsPath), tokenizer: () => loadTokenizerFile(tokPath, text) });
  try {
    console.log(`adapter: ${gpu.describe()}`);
    console.log(`model: ${modelDir}; ${items.length} images, ${classes.length} classes; templates '${tname}' (${templates.length}): ${templates.map((t) => JSON.stringify(t)).join(', ')}`);
    // Class embeddings: every (class, template) prompt, normalised, averaged per class, normalised.
    const t0 = performance.now();
    const prompts = classes.flatMap((c) => templates.map((t) => t.split('{}').join(c)));
    const te = await model.encodeText(prompts);
    const C = te.dim;
    const sums = new Float32Array(classes.length * C);
    for (let k = 0; k < classes.length; k++) for (let j = 0; j < templates.length; j++) for (let c = 0; c < C; c++) sums[k * C + c] += te.textEmbeds[(k * templates.length + j) * C + c];
    const classEmbeds = normalizeRows(sums, C);
    const textMs = performance.now() - t0;
    console.log(`text: ${prompts.length} prompts in ${(textMs / 1000).toFixed(2)} s (${((1000 * prompts.length) / textMs).toFixed(2)} prompts/s, first use: loads the text weights and compiles)`);
    // Images, in batches.
    let top1 = 0;
    let top5 = 0;
    const perClass = new Map<string, { n: number; top1: number }>(classes.map((c) => [c, { n: 0, top1: 0 }]));
    const t1 = performance.now();
    let imageMs = 0;
    for (let i = 0; i < items.length; i += batchSize) {
      const batch = items.slice(i, i + batchSize);
      const rgb = batch.map((it) => readImage(it.path));
      const s = performance.now();
      const enc = await model.encodeImages(rgb);
      imageMs += performance.now() - s;
      const img = normalizeRows(enc.embedding, C);
      batch.forEach((it, b) => {
        const scores = classes.map((_, k) => {
          let d = 0;
          for (let c = 0; c < C; c++) d += img[b * C + c] * classEmbeds[k * C + c];
          return d;
        });
        const order = scores.map((_, k) => k).sort((x, y) => scores[y] - scores[x]);
        const truth = classes.indexOf(it.label);
        const pc = perClass.get(it.label)!;
        pc.n++;
        if (order[0] === truth) (top1++, pc.top1++);
        if (order.slice(0, 5).includes(truth)) top5++;
      });
    }
    const wallMs = performance.now() - t1;
    const r = {
      adapter: gpu.describe(),
      date: new Date().toISOString(),
      model: modelDir,
      images: items.length,
      classes: classes.length,
      templates: { name: tname, list: templates },
      top1: top1 / items.length,
      top5: top5 / items.length,
      imagesPerS: (1000 * items.length) / imageMs,
      imagesPerSWithDecode: (1000 * items.length) / wallMs,
      textPrompts: prompts.length,
      textMs,
      perClassTop1: Object.fromEntries([...perClass].map(([c, v]) => [c, v.n ? v.top1 / v.n : 0])),
    };
    console.log(`top-1 ${(100 * r.top1).toFixed(2)}%  top-5 ${(100 * r.top5).toFixed(2)}%  over ${items.length} images, ${classes.length} classes${classes.length <= 5 ? ' (top-5 is trivially 100% with 5 classes or fewer)' : ''}`);
    console.log(`images: ${r.imagesPerS.toFixed(2)} images/s (encode, batches of ${batchSize}); ${r.imagesPerSWithDecode.toFixed(2)} images/s with file decoding`);
    const json = f.get('json');
    if (json) {
      writeFile(json, JSON.stringify(r, null, 1));
      console.log(`wrote ${json}`);
    }
  } finally {
    model.dispose();
    gpu.destroy();
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    console.error(`zero-shot: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
