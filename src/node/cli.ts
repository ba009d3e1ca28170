#!/usr/bin/env node
// dualtoken: the command line. On any error: one line on stderr (control characters escaped) and
// a non-zero status; in a batch, the images that could be read and encoded are still processed and
// written (status 2). Outputs are checked before any work (not an input, writable) and written
// atomically (src/node/output.ts); `--out -` is stdout where the output is one file.
import { basename, extname } from 'node:path';
import { MemoryReader } from '../core/bytes.js';
import { toFloat32 } from '../core/dtype.js';
import { encodeSafetensors, openSafetensors } from '../core/safetensors.js';
import type { DualTokenConfig } from '../core/config.js';
import type { RgbImage } from '../core/image.js';
import type { DualToken, EncodeResult } from '../model/dualtoken.js';
import { formatTable, summarize } from '../core/profile.js';
import { OP_NAMES, parseKernelChoice, type KernelChoice, type Precision } from '../ops/choice.js';
import type { Program } from '../core/program.js';
import { parseArgs, type ParsedArgs } from './args.js';
import { DeviceLossRetry, runBatches } from './batches.js';
import { benchCommand } from './bench.js';
import { codesFile, readCodes } from './codes.js';
import { convertCommand } from './convert.js';
import { needsStderrFilter, runWithFilteredStderr } from './dawn-warnings.js';
import { encodePng } from './decode.js';
import { demoCommand } from './demo.js';
import { infoCommand } from './info.js';
import { readBytes, readImage } from './io.js';
import { Progress } from './progress.js';
import { loadDualToken, locateModel } from './load.js';
import { oneLine } from './messages.js';
import { classifyCommand, encodeTextCommand, type TextCommandContext } from './text-commands.js';
import { searchCommand } from './search-command.js';
import { DATASET_SWITCHES, DATASET_USAGE, DATASET_VALUE_FLAGS, DatasetPartialFailure, queueCommand, tokenizeCommand, workerCommand } from './dataset-commands.js';
import { STDOUT, checkExtension, checkNotInputs, checkWritableFile, checkWritableFolder, folderOutputs, writeFile, writeOutput } from './output.js';

const USAGE = `usage:
  dualtoken encode --model DIR [--pixel-values FILE.safetensors] [IMAGE ...] --out OUT.safetensors|OUT.json|- [--format safetensors|json]
  dualtoken encode-text --model DIR (--input-ids IDS.safetensors | TEXT ...) --out OUT.safetensors [--tokenizer tokenizer.json]
  dualtoken classify --model DIR (IMAGE ... | --pixel-values F) (--labels "a cat" "a dog" ... | --labels-file F | --input-ids IDS.safetensors) [--template "a photo of {}."] [--top K] [--out OUT.safetensors] [--tokenizer tokenizer.json]
  dualtoken search --model DIR --images FOLDER --query "TEXT" [--top 10] [--cache FILE.safetensors] [--batch-size 4] [--tokenizer tokenizer.json]
  dualtoken decode --model DIR CODES.safetensors|CODES.json --out OUT.safetensors|OUT.png|- [--format safetensors|png]
  dualtoken reconstruct --model DIR IMAGE [IMAGE ...] --out OUT.png|DIR
  dualtoken info --model DIR
  dualtoken convert IN.pt|IN.safetensors|IN.index.json --out OUT.safetensors [--dtype f32|f16|bf16] [--drop-text-tower] [--drop-ema]
  dualtoken demo [--out DIR]
  dualtoken bench [--preset siglip_384_rvq8 | --model DIR] [--batch 1,2] [--reps 3] [--json FILE] [--profile] [--text [--text-prompts 1000] [--text-only]]
${DATASET_USAGE}
options: --adapter auto|cpu|ICD.json (WebGPU adapter), --quiet (no progress), --batch-size N (images per GPU batch, 4),
  --profile (encode/decode/reconstruct/bench: a per-kernel GPU time table on stderr),
  --kernel op=variant[,op=variant] (kernel variants: ${OP_NAMES.join(', ')}; see 'info'),
  --autotune (measure the variants on this adapter and keep the winners in ~/.cache/dualtoken/),
  --allow-nonfinite (load weights holding NaN / Inf, for experiments; a call they reach still fails naming the stage),
  --exif-rotate (encode/reconstruct: turn JPEGs upright by their EXIF orientation; by default pixels are taken as stored,
  as the official pipeline's Pillow Image.open does),
  --precision f32|f16 (f16: linear (CPU adapters: and 1x1 conv) weights stored as halves, math in f32; faster encode on
  CPU adapters, outputs off by ~1e-3 of their size and codes may differ from the official model's; default f32),
  --keep pooler (tokenize, queue add: also f32 pooler_output [N,C]), --redis URL (queue, worker: redis://[[user]:password@]host[:port][/db],
  or rediss:// for TLS), --queue NAME (dualtoken-tokenize), --concurrency N (worker, 1), --lock-duration MS (worker, 30000: how long
  a dead worker's job waits), --until-empty (worker: exit once the queue is empty)`;

const VALUE_FLAGS = ['model', 'pixel-values', 'out', 'adapter', 'format', 'dtype', 'preset', 'batch', 'batch-size', 'reps', 'json', 'kernel', 'precision', 'input-ids', 'labels', 'labels-file', 'template', 'top', 'tokenizer', 'text-prompts', 'images', 'query', 'cache', ...DATASET_VALUE_FLAGS];
const SWITCHES = ['quiet', 'help', 'drop-text-tower', 'drop-ema', 'profile', 'autotune', 'allow-nonfinite', 'exif-rotate', 'text', 'text-only', ...DATASET_SWITCHES];

/** A batch where some inputs failed: the others were written; the exit status is still non-zero. */
class PartialFailure extends Error {}

function need(args: ParsedArgs, flag: string): string {
  const v = args.flags.get(flag);
  if (!v) throw new Error(`'${args.command}' needs --${flag}`);
  return v;
}

const quiet = (args: ParsedArgs) => args.switches.has('quiet');
/** Reads an input image; --exif-rotate turns JPEGs upright by their EXIF orientation. */
const imageReader = (args: ParsedArgs) => (path: string) => readImage(path, { exifRotate: args.switches.has('exif-rotate') });
const batchSize = (args: ParsedArgs) => positiveInt(args.flags.get('batch-size') ?? '4', '--batch-size');
/** An error on stderr, as one line (control characters escaped). */
const report = (message: string) => console.error(`dualtoken: ${oneLine(message)}`);

/** With --profile: runs the program once more with every dispatch timed and prints the table. */
async function maybeProfile(args: ParsedArgs, programs: Program[]): Promise<void> {
  if (!args.switches.has('profile')) return;
  for (const prog of programs) {
    const p = await prog.profile();
    console.error(`${prog.label}, ${p.source}:\n${formatTable(summarize(p.timings))}`);
  }
}

/**
 * The model of --model. Dawn's adapter warnings are silenced at the first load only: a reload
 * after a lost device happens while the old device's driver threads may still open files.
 */
function openModel(args: ParsedArgs, first = true): Promise<DualToken> {
  const progress = new Progress('loading weights', 0, quiet(args), process.stderr, 'B');
  return loadDualToken(need(args, 'model'), {
    ...kernelOptions(args),
    silenceAdapterWarnings: first,
    onProgress: (p) => progress.update(p.bytes, `${p.tensors}/${p.totalTensors} tensors`, p.totalBytes),
  });
}

/** The model at a path with the CLI's kernel options (tokenize, worker); Dawn's adapter warnings silenced at the first load only. */
function modelLoader(args: ParsedArgs): (path: string) => Promise<DualToken> {
  let first = true;
  return (path) => {
    const silence = first;
    first = false;
    return loadDualToken(path, { ...kernelOptions(args), silenceAdapterWarnings: silence });
  };
}

/** The model, and its replacement on a new device when the device is lost (see DeviceLossRetry). */
interface Session {
  model: DualToken;
  retry: DeviceLossRetry;
}

async function openSession(args: ParsedArgs): Promise<Session> {
  const session: Session = {
    model: await openModel(args),
    retry: new DeviceLossRetry(async () => {
      try {
        session.model.dispose();
      } catch {
        // the lost device's buffers may refuse to be destroyed; they are gone with it anyway
      }
      session.model = await openModel(args, false);
    }),
  };
  return session;
}

/** --adapter, --kernel, --precision, --autotune and --allow-nonfinite, as load options. */
function kernelOptions(args: ParsedArgs): { adapter?: string; kernels?: KernelChoice; precision?: Precision; autotune: boolean; allowNonFinite: boolean; log?: (line: string) => void } {
  const spec = args.flags.get('kernel');
  const precision = args.flags.get('precision');
  if (precision !== undefined && precision !== 'f32' && precision !== 'f16') throw new Error(`--precision ${precision}: use f32 or f16`);
  return {
    adapter: args.flags.get('adapter'),
    kernels: spec ? parseKernelChoice(spec) : undefined,
    precision,
    autotune: args.switches.has('autotune'),
    allowNonFinite: args.switches.has('allow-nonfinite'),
    log: quiet(args) ? undefined : (line) => console.error(line),
  };
}

/** The format an --out takes: --format, else from the extension; `-` needs --format. */
function outputFormat(args: ParsedArgs, out: string, formats: Record<string, string>): string {
  const given = args.flags.get('format');
  const names = Object.keys(formats);
  if (given !== undefined && !names.includes(given)) throw new Error(`--format ${given}: use ${names.join(' or ')}`);
  const format = given ?? names.find((f) => out.toLowerCase().endsWith(formats[f]));
  if (out === STDOUT && !given) throw new Error(`--out - (stdout) needs --format ${names.join('|')}`);
  if (!format) throw new Error(`${out}: the output of '${args.command}' must end in ${Object.values(formats).join(' or ')}`);
  checkExtension(out, [formats[format]], `${format} output`);
  return format;
}

/** Encoded batches -> one result, in order. */
function concatResults(parts: EncodeResult[]): EncodeResult {
  const cat = <T extends Int32Array | Float32Array>(pick: (r: EncodeResult) => T, make: (n: number) => T): T => {
    const out = make(parts.reduce((s, r) => s + pick(r).length, 0));
    let at = 0;
    for (const r of parts) {
      out.set(pick(r), at);
      at += pick(r).length;
    }
    return out;
  };
  return {
    batch: parts.reduce((s, r) => s + r.batch, 0),
    pixelCodes: cat((r) => r.pixelCodes, (n) => new Int32Array(n)),
    semanticCodes: cat((r) => r.semanticCodes, (n) => new Int32Array(n)),
    semanticFeatures: cat((r) => r.semanticFeatures, (n) => new Float32Array(n)),
    embedding: cat((r) => r.embedding, (n) => new Float32Array(n)),
  };
}

async function readPixelValues(path: string, config: DualTokenConfig): Promise<{ data: Float32Array; batch: number }> {
  const st = await openSafetensors(new MemoryReader(readBytes(path), path));
  const info = st.info('pixel_values');
  if (!info) throw new Error(`${path}: no tensor 'pixel_values'`);
  const v = config.vision;
  const want = [info.shape[0], v.numChannels, v.imageSize, v.imageSize];
  if (info.shape.length !== 4 || info.shape.some((d, i) => d !== want[i])) throw new Error(`${path}: pixel_values is [${info.shape}], the model takes [B,${want.slice(1)}]`);
  return { data: toFloat32(await st.read('pixel_values'), info.dtype, `${path}: pixel_values`), batch: info.shape[0] };
}

/** Images through the encoder in batches; failed images are reported and left out. */
async function encodeFiles(session: Session, images: string[], size: number, args: ParsedArgs): Promise<{ result: EncodeResult; names: string[]; failures: number }> {
  const progress = new Progress('encoding', images.length, quiet(args), process.stderr, ' images');
  const parts: EncodeResult[] = [];
  const names: string[] = [];
  const failures = await runBatches({
    paths: images,
    size,
    read: imageReader(args),
    run: (batch) => session.model.encodeImages(batch),
    take: (indices, r) => {
      names.push(...indices.map((i) => images[i]));
      parts.push(r);
    },
    retry: session.retry,
    fail: report,
    progress: (done) => progress.update(done),
  });
  if (!parts.length) throw new Error(`no image could be encoded (${failures} of ${images.length} failed)`);
  return { result: concatResults(parts), names, failures };
}

async function encodeCommand(args: ParsedArgs): Promise<void> {
  const out = need(args, 'out');
  const pvPath = args.flags.get('pixel-values');
  const images = args.positionals;
  if (!pvPath && images.length === 0) throw new Error(`'encode' needs --pixel-values FILE or image files`);
  if (pvPath && images.length) throw new Error(`'encode' takes --pixel-values or image files, not both`);
  const format = outputFormat(args, out, { safetensors: '.safetensors', json: '.json' });
  if (out === STDOUT && format === 'safetensors' && process.stdout.isTTY) throw new Error(`--out -: refusing to write binary safetensors to a terminal`);
  const size = batchSize(args);
  const { config, files } = locateModel(need(args, 'model'));
  checkNotInputs([out], [...images, ...(pvPath ? [pvPath] : []), ...files]);
  checkWritableFile(out);
  const pv = pvPath ? await readPixelValues(pvPath, config) : undefined;
  const session = await openSession(args);
  try {
    const { result, names, failures } = pv
      ? { result: await session.retry.run(() => session.model.encode(pv.data, pv.batch)), names: undefined, failures: 0 }
      : await encodeFiles(session, images, size, args);
    await writeOutput(out, codesFile(config, result, names, format === 'json'));
    if (!quiet(args)) console.error(`encoded ${result.batch} image(s) -> ${out}`);
    await maybeProfile(args, [session.model.encoderProgram(pv ? result.batch : Math.min(result.batch, size))]);
    if (failures) throw new PartialFailure(`${failures} of ${images.length} images failed; ${out} holds the other ${result.batch}`);
  } finally {
    session.model.dispose();
  }
}

/** OUT.png for one image; name_0.png, name_1.png ... for a batch. */
function pngPaths(out: string, count: number): string[] {
  if (count === 1) return [out];
  const ext = extname(out);
  const stem = out.slice(0, out.length - ext.length);
  return Array.from({ length: count }, (_, i) => `${stem}_${i}${ext}`);
}

async function decodeCommand(args: ParsedArgs): Promise<void> {
  const out = need(args, 'out');
  const format = outputFormat(args, out, { safetensors: '.safetensors', png: '.png' });
  if (out === STDOUT && format !== 'safetensors') throw new Error(`--out - (stdout) takes --format safetensors; PNG images go to files`);
  if (args.positionals.length !== 1) throw new Error(`'decode' takes one codes file`);
  const codesPath = args.positionals[0];
  const { config, files } = locateModel(need(args, 'model'));
  const { codes, shape } = await readCodes(codesPath, config.quantPix);
  const outputs = format === 'png' ? pngPaths(out, shape[0]) : [out];
  checkNotInputs(outputs, [codesPath, ...files]);
  outputs.forEach(checkWritableFile);
  const session = await openSession(args);
  try {
    const r = await session.retry.run(() => session.model.decode(codes, shape[0])).catch((e: Error) => {
      throw new Error(`${codesPath}: ${e.message}`);
    });
    if (format === 'safetensors') await writeOutput(out, encodeSafetensors({ recon: { dtype: 'F32', shape: r.shape, data: r.recon } }));
    else outputs.forEach((p, i) => writeFile(p, encodePng(r.images[i])));
    if (!quiet(args)) console.error(`decoded ${r.batch} image(s) -> ${out}`);
    await maybeProfile(args, [session.model.decoderProgram(r.batch)]);
  } finally {
    session.model.dispose();
  }
}

async function reconstructCommand(args: ParsedArgs): Promise<void> {
  const out = need(args, 'out');
  const images = args.positionals;
  if (!images.length) throw new Error(`'reconstruct' needs an image file`);
  const many = images.length > 1;
  if (!many && !out.toLowerCase().endsWith('.png')) throw new Error(`${out}: the output must be a .png file (or a folder for several images)`);
  const size = batchSize(args);
  const { files } = locateModel(need(args, 'model'));
  const outputs = many ? folderOutputs(images, out) : [{ path: out, renamed: false }];
  checkNotInputs(outputs.map((o) => o.path), [...images, ...files]);
  if (many) checkWritableFolder(out);
  else checkWritableFile(out);
  const say = (line: string) => quiet(args) || console.error(oneLine(line));
  outputs.forEach((o, i) => o.renamed && say(`${images[i]} -> ${o.path} (${basename(images[i], extname(images[i]))}.png is taken by an earlier input)`));
  const session = await openSession(args);
  let writeFailures = 0;
  /** One reconstruction to its file; a failed write is reported and the other images go on. */
  const write = (index: number, image: RgbImage) => {
    try {
      writeFile(outputs[index].path, encodePng(image));
      if (!many) say(`${images[index]} -> ${outputs[index].path}`);
    } catch (e) {
      writeFailures++;
      report((e as Error).message);
    }
  };
  try {
    const progress = new Progress('reconstructing', images.length, quiet(args) || !many, process.stderr, ' images');
    const failures = await runBatches({
      paths: images,
      size,
      read: imageReader(args),
      run: async (batch) => {
        const codes = await session.model.encodeImages(batch);
        return session.model.decode(codes.pixelCodes, codes.batch);
      },
      take: (indices, r) => indices.forEach((index, j) => write(index, r.images[j])),
      retry: session.retry,
      fail: report,
      progress: (done) => progress.update(done),
    });
    const failed = failures + writeFailures;
    if (failed === images.length) throw new Error(`no image could be reconstructed (${failed} failed)`);
    await maybeProfile(args, [session.model.encoderProgram(Math.min(size, images.length)), session.model.decoderProgram(Math.min(size, images.length))]);
    if (failed) throw new PartialFailure(`${failed} of ${images.length} images failed; the other ${images.length - failed} were written`);
  } finally {
    session.model.dispose();
  }
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} ${text}: expected a positive integer`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const args = parseArgs(argv, VALUE_FLAGS, SWITCHES);
    if (args.switches.has('help') || args.command === 'help') {
      console.log(USAGE);
      return 0;
    }
    const textCtx: TextCommandContext = { argv: argv.slice(1), openModel: (a) => openModel(a), readPixelValues, readImage: imageReader(args) };
    const commands: Record<string, () => Promise<void>> = {
      encode: () => encodeCommand(args),
      'encode-text': () => encodeTextCommand(args, textCtx),
      classify: () => classifyCommand(args, textCtx),
      search: () => searchCommand(args, textCtx),
      decode: () => decodeCommand(args),
      reconstruct: () => reconstructCommand(args),
      info: () => infoCommand(need(args, 'model'), kernelOptions(args)),
      convert: () => convertCommand(args.positionals, args.flags, args.switches),
      bench: () =>
        benchCommand({
          model: args.flags.get('model'),
          preset: args.flags.get('preset') ?? 'siglip_384_rvq8',
          batches: (args.flags.get('batch') ?? '1,2').split(',').map((b) => positiveInt(b, '--batch')),
          reps: positiveInt(args.flags.get('reps') ?? '3', '--reps'),
          json: args.flags.get('json'),
          profile: args.switches.has('profile'),
          text: args.switches.has('text'),
          textOnly: args.switches.has('text-only'),
          textPrompts: args.flags.has('text-prompts') ? positiveInt(args.flags.get('text-prompts')!, '--text-prompts') : undefined,
          ...kernelOptions(args),
        }),
      tokenize: () => tokenizeCommand(args, modelLoader(args)),
      queue: () => queueCommand(args),
      worker: () => workerCommand(args, modelLoader(args)),
      demo: () => demoCommand(args.flags.get('out') ?? 'out/demo', args.switches.has('quiet'), args.flags.get('adapter')),
    };
    const run = commands[args.command];
    if (!run) throw new Error(`unknown command '${args.command}' (try 'dualtoken help')`);
    await run();
    return 0;
  } catch (e) {
    report(e instanceof Error ? e.message : String(e));
    return e instanceof PartialFailure || e instanceof DatasetPartialFailure ? 2 : 1;
  }
}

// Dawn's binding can keep Node alive after the work is done: exit explicitly. Where Dawn's adapter
// warnings cannot be kept off stderr in this process, it runs as a child whose stderr is filtered.
(needsStderrFilter() ? runWithFilteredStderr() : main(process.argv.slice(2))).then((code) => process.exit(code));
