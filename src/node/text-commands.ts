// The text commands of the CLI (wired in cli.ts):
//   dualtoken encode-text --model DIR (--input-ids IDS.safetensors | TEXT ...) --out OUT.safetensors
//     f32 text_embeds [T, C] (normalised), text_embeds_raw [T, C], int32 input_ids [T, L]
//   dualtoken classify --model DIR (IMAGE ... | --pixel-values F) (--labels "a cat" "a dog" ... |
//     --labels-file F | --input-ids IDS.safetensors) [--template "a photo of {}."] [--top K] [--out OUT.safetensors]
//     a ranked table per image (sigmoid probabilities, one per pair: they need not sum to 1);
//     --out: f32 logits_per_image [B, T], probs [B, T], image_embeds [B, C], text_embeds [T, C]
// Strings go through tokenizer.json beside the weights (--tokenizer FILE to name another one).
// The helpers that live in cli.ts (opening the model with the common options, reading
// --pixel-values, reading images) come in through TextCommandContext.
import { readFileSync } from 'node:fs';
import { MemoryReader } from '../core/bytes.js';
import type { DualTokenConfig } from '../core/config.js';
import { toInt32 } from '../core/dtype.js';
import type { RgbImage } from '../core/image.js';
import { encodeSafetensors, openSafetensors } from '../core/safetensors.js';
import type { DualToken } from '../model/dualtoken.js';
import type { ClassifyResult, TextInput } from '../model/text-model.js';
import type { ParsedArgs } from './args.js';
import { openWeightsFile } from './files.js';
import { readBytes } from './io.js';
import { locateModel } from './load.js';
import { checkExtension, checkNotInputs, checkWritableFile, writeOutput } from './output.js';
import { findTokenizerFile, loadTokenizerFile } from './tokenizer.js';

export interface TextCommandContext {
  /** The raw words after the command name (to collect the several values of --labels). */
  argv: string[];
  /** cli.ts's openModel: --model with --adapter, --kernel, --precision ..., progress on stderr. */
  openModel: (args: ParsedArgs) => Promise<DualToken>;
  /** cli.ts's readPixelValues. */
  readPixelValues: (path: string, config: DualTokenConfig) => Promise<{ data: Float32Array; batch: number }>;
  /** cli.ts's image reader (--exif-rotate). */
  readImage: (path: string) => RgbImage;
}

function need(args: ParsedArgs, flag: string): string {
  const v = args.flags.get(flag);
  if (!v) throw new Error(`'${args.command}' needs --${flag}`);
  return v;
}

const quiet = (args: ParsedArgs) => args.switches.has('quiet');

function batchSize(args: ParsedArgs): number {
  const text = args.flags.get('batch-size') ?? '4';
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--batch-size ${text}: expected a positive integer`);
  return n;
}

/** The words following --labels up to the next option (parseArgs keeps only the first as the flag's value). */
function labelsOf(argv: string[]): string[] {
  const labels: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--labels') {
      for (let j = i + 1; j < argv.length && !argv[j].startsWith('--'); j++) labels.push(argv[j]);
    } else if (argv[i].startsWith('--labels=')) labels.push(argv[i].slice('--labels='.length));
  }
  return labels;
}

/** args.positionals without the words --labels took (in order). */
function withoutLabels(positionals: string[], labels: string[]): string[] {
  const rest = [...positionals];
  for (const l of labels.slice(1)) {
    const i = rest.indexOf(l);
    if (i >= 0) rest.splice(i, 1);
  }
  return rest;
}

/** input_ids [T, L] (int32 or int64) from a safetensors file. */
async function readInputIds(path: string, L: number): Promise<{ inputIds: Int32Array; count: number }> {
  const st = await openSafetensors(new MemoryReader(readBytes(path), path));
  const info = st.info('input_ids');
  if (!info) throw new Error(`${path}: no tensor 'input_ids'`);
  if (info.shape.length !== 2 || info.shape[1] !== L || info.shape[0] < 1) throw new Error(`${path}: input_ids is [${info.shape}], the model takes [T,${L}] (max_position_embeddings ${L})`);
  if (info.dtype !== 'I32' && info.dtype !== 'I64') throw new Error(`${path}: input_ids is ${info.dtype}, expected I32 or I64`);
  return { inputIds: toInt32(await st.read('input_ids'), info.dtype, `${path}: input_ids`), count: info.shape[0] };
}

/** The model with its text side pointed at the weights (reopened at first use) and the tokenizer (also used by search-command.ts). */
export async function openTextModel(args: ParsedArgs, ctx: TextCommandContext, weightsPath: string, config: DualTokenConfig): Promise<DualToken> {
  const text = config.text;
  if (!text) throw new Error(`${need(args, 'model')}: the config has no text_config (siglip_config.json with a text_config is needed beside config.json)`);
  const tokPath = args.flags.get('tokenizer') ?? findTokenizerFile(need(args, 'model'));
  const model = await ctx.openModel(args);
  model.configureText({
    textSource: () => openWeightsFile(weightsPath),
    tokenizer: tokPath ? () => loadTokenizerFile(tokPath, text) : undefined,
  });
  return model;
}

export async function encodeTextCommand(args: ParsedArgs, ctx: TextCommandContext): Promise<void> {
  const out = need(args, 'out');
  checkExtension(out, ['.safetensors'], 'encode-text output');
  const idsPath = args.flags.get('input-ids');
  const texts = args.positionals;
  if (!idsPath && texts.length === 0) throw new Error(`'encode-text' needs --input-ids FILE or texts`);
  if (idsPath && texts.length) throw new Error(`'encode-text' takes --input-ids or texts, not both`);
  const { config, weightsPath, files } = locateModel(need(args, 'model'));
  checkNotInputs([out], [...(idsPath ? [idsPath] : []), ...files]);
  checkWritableFile(out);
  const L = config.text?.maxPositionEmbeddings ?? 0;
  const input: TextInput = idsPath ? await readInputIds(idsPath, L) : texts;
  const model = await openTextModel(args, ctx, weightsPath, config);
  try {
    const r = await model.encodeText(Array.isArray(input) ? input : input.inputIds, Array.isArray(input) ? undefined : input.count);
    await writeOutput(
      out,
      encodeSafetensors({
        text_embeds: { dtype: 'F32', shape: [r.count, r.dim], data: r.textEmbeds },
        text_embeds_raw: { dtype: 'F32', shape: [r.count, r.dim], data: r.textEmbedsRaw },
        input_ids: { dtype: 'I32', shape: [r.count, r.inputIds.length / r.count], data: r.inputIds },
      }),
    );
    if (!quiet(args)) console.error(`encoded ${r.count} text(s) -> ${out}`);
  } finally {
    model.dispose();
  }
}

export async function classifyCommand(args: ParsedArgs, ctx: TextCommandContext): Promise<void> {
  const out = args.flags.get('out');
  if (out !== undefined) checkExtension(out, ['.safetensors'], 'classify output');
  const labels = labelsOf(ctx.argv);
  const labelsFile = args.flags.get('labels-file');
  const idsPath = args.flags.get('input-ids');
  const sources = [labels.length > 0, labelsFile !== undefined, idsPath !== undefined].filter(Boolean).length;
  if (sources !== 1) throw new Error(`'classify' needs exactly one of --labels, --labels-file and --input-ids`);
  const pvPath = args.flags.get('pixel-values');
  const images = withoutLabels(args.positionals, labels);
  if (!pvPath && images.length === 0) throw new Error(`'classify' needs --pixel-values FILE or image files`);
  if (pvPath && images.length) throw new Error(`'classify' takes --pixel-values or image files, not both`);
  const topText = args.flags.get('top');
  const top = topText === undefined ? 5 : Number(topText);
  if (!Number.isInteger(top) || top < 1) throw new Error(`--top ${topText}: expected a positive integer`);
  const template = args.flags.get('template');
  if (template !== undefined && !template.includes('{}')) throw new Error(`--template ${JSON.stringify(template)}: needs a {} where the label goes`);
  if (template !== undefined && idsPath) throw new Error(`--template applies to labels, not to --input-ids`);
  const { config, weightsPath, files } = locateModel(need(args, 'model'));
  const inputs = [...images, ...(pvPath ? [pvPath] : []), ...(labelsFile ? [labelsFile] : []), ...(idsPath ? [idsPath] : []), ...files];
  if (out !== undefined) {
    checkNotInputs([out], inputs);
    checkWritableFile(out);
  }
  let names: string[];
  let text: TextInput;
  if (idsPath) {
    const ids = await readInputIds(idsPath, config.text?.maxPositionEmbeddings ?? 0);
    text = ids;
    names = Array.from({ length: ids.count }, (_, t) => `ids[${t}]`);
  } else {
    let list = labels;
    if (labelsFile) {
      let body: string;
      try {
        body = readFileSync(labelsFile, 'utf8');
      } catch (e) {
        throw new Error(`${labelsFile}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      list = body.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
      if (list.length === 0) throw new Error(`${labelsFile}: no labels (one per line)`);
    }
    names = list;
    text = template === undefined ? list : list.map((l) => template.split('{}').join(l));
  }
  const pv = pvPath ? await ctx.readPixelValues(pvPath, config) : undefined;
  const rgb = pv ? undefined : images.map((p) => ctx.readImage(p));
  const model = await openTextModel(args, ctx, weightsPath, config);
  try {
    let r: ClassifyResult;
    if (pv) r = await model.classify({ pixelValues: pv.data, batch: pv.batch }, text);
    else {
      // Images in batches of --batch-size (4), as encode does; then one classification of all embeddings.
      const size = batchSize(args);
      const parts: Float32Array[] = [];
      for (let i = 0; i < rgb!.length; i += size) parts.push((await model.encodeImages(rgb!.slice(i, i + size))).embedding);
      const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
      r = await model.text().classifyEmbeddings(all, rgb!.length, text);
    }
    const T = r.count;
    const imageNames = pv ? Array.from({ length: r.batch }, (_, b) => `${pvPath}[${b}]`) : images;
    for (let b = 0; b < r.batch; b++) {
      const order = Array.from({ length: T }, (_, t) => t).sort((x, y) => r.logitsPerImage[b * T + y] - r.logitsPerImage[b * T + x]);
      console.log(`${imageNames[b]}:`);
      for (const t of order.slice(0, top)) console.log(`  ${r.probs[b * T + t].toExponential(4).padStart(11)}  ${r.logitsPerImage[b * T + t].toFixed(4).padStart(9)}  ${names[t]}`);
    }
    if (out !== undefined) {
      const C = r.imageEmbeds.length / r.batch;
      await writeOutput(
        out,
        encodeSafetensors({
          logits_per_image: { dtype: 'F32', shape: [r.batch, T], data: r.logitsPerImage },
          probs: { dtype: 'F32', shape: [r.batch, T], data: r.probs },
          image_embeds: { dtype: 'F32', shape: [r.batch, C], data: r.imageEmbeds },
          text_embeds: { dtype: 'F32', shape: [T, C], data: r.textEmbeds },
        }),
      );
      if (!quiet(args)) console.error(`classified ${r.batch} image(s) against ${T} text(s) -> ${out}`);
    }
  } finally {
    model.dispose();
  }
}
