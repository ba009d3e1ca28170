#!/usr/bin/env node
// dualtoken: the command line. On any error: a one-line message on stderr and a non-zero status;
// in a batch, the files that could be read are still processed and written.
import { readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { MemoryReader } from '../core/bytes.js';
import { toFloat32, toInt32 } from '../core/dtype.js';
import { encodeSafetensors, openSafetensors } from '../core/safetensors.js';
import type { RgbImage } from '../core/image.js';
import type { DualToken, EncodeResult } from '../model/dualtoken.js';
import { formatTable, summarize } from '../core/profile.js';
import { parseKernelChoice, type KernelChoice, type Precision } from '../core/variants.js';
import type { Program } from '../core/program.js';
import { parseArgs, type ParsedArgs } from './args.js';
import { benchCommand } from './bench.js';
import { convertCommand } from './convert.js';
import { encodePng } from './decode.js';
import { demoCommand } from './demo.js';
import { infoCommand } from './info.js';
import { readImages, writeFile } from './io.js';
import { Progress } from './progress.js';
import { loadDualToken } from './load.js';

const USAGE = `usage:
  dualtoken encode --model DIR [--pixel-values FILE.safetensors] [IMAGE ...] --out OUT.safetensors [--format json]
  dualtoken decode --model DIR CODES.safetensors|CODES.json --out OUT.safetensors|OUT.png
  dualtoken reconstruct --model DIR IMAGE [IMAGE ...] --out OUT.png|DIR
  dualtoken info --model DIR
  dualtoken convert IN.pt|IN.safetensors|IN.index.json --out OUT.safetensors [--dtype f32|f16|bf16] [--drop-text-tower] [--drop-ema]
  dualtoken demo [--out DIR]
  dualtoken bench [--preset siglip_384_rvq8 | --model DIR] [--batch 1,2] [--reps 2] [--json FILE] [--profile]
options: --adapter auto|cpu|ICD.json (WebGPU adapter), --quiet (no progress), --batch-size N (images per GPU batch, 4),
  --profile (encode/decode/reconstruct/bench: a per-kernel GPU time table on stderr),
  --kernel op=variant[,op=variant] (kernel variants: linear, attention, conv2d, group_norm, rq_search; see 'info'),
  --autotune (measure the variants on this adapter and keep the winners in ~/.cache/dualtoken/),
  --precision f32|f16 (f16: linear (CPU adapters: and 1x1 conv) weights stored as halves, math in f32; faster encode on
  CPU adapters, outputs off by ~1e-3 of their size and codes may differ from the official model's; default f32)`;

const VALUE_FLAGS = ['model', 'pixel-values', 'out', 'adapter', 'format', 'dtype', 'preset', 'batch', 'batch-size', 'reps', 'json', 'kernel', 'precision'];
const SWITCHES = ['quiet', 'help', 'drop-text-tower', 'drop-ema', 'profile', 'autotune'];

/** A batch where some inputs failed: the others were written; the exit status is still non-zero. */
class PartialFailure extends Error {}

function need(args: ParsedArgs, flag: string): string {
  const v = args.flags.get(flag);
  if (!v) throw new Error(`'${args.command}' needs --${flag}`);
  return v;
}

/** With --profile: runs the program once more with every dispatch timed and prints the table. */
async function maybeProfile(args: ParsedArgs, programs: Program[]): Promise<void> {
  if (!args.switches.has('profile')) return;
  for (const prog of programs) {
    const p = await prog.profile();
    console.error(`${prog.label}, ${p.source}:\n${formatTable(summarize(p.timings))}`);
  }
}

function openModel(args: ParsedArgs): Promise<DualToken> {
  const progress = new Progress('loading weights', 0, args.switches.has('quiet'), process.stderr, 'B');
  return loadDualToken(need(args, 'model'), {
    ...kernelOptions(args),
    onProgress: (p) => progress.update(p.bytes, `${p.tensors}/${p.totalTensors} tensors`, p.totalBytes),
  });
}

/** --adapter, --kernel, --precision and --autotune, as load options. */
function kernelOptions(args: ParsedArgs): { adapter?: string; kernels?: KernelChoice; precision?: Precision; autotune: boolean; log?: (line: string) => void } {
  const spec = args.flags.get('kernel');
  const precision = args.flags.get('precision');
  if (precision !== undefined && precision !== 'f32' && precision !== 'f16') throw new Error(`--precision ${precision}: use f32 or f16`);
  return {
    adapter: args.flags.get('adapter'),
    kernels: spec ? parseKernelChoice(spec) : undefined,
    precision,
    autotune: args.switches.has('autotune'),
    log: args.switches.has('quiet') ? undefined : (line) => console.error(line),
  };
}

/** Encodes images in batches of --batch-size with progress and ETA; results concatenated in order. */
async function encodeInBatches(model: DualToken, images: RgbImage[], args: ParsedArgs): Promise<EncodeResult> {
  const size = positiveInt(args.flags.get('batch-size') ?? '4', '--batch-size');
  const progress = new Progress('encoding', images.length, args.switches.has('quiet'), process.stderr, ' images');
  const parts: EncodeResult[] = [];
  for (let i = 0; i < images.length; i += size) {
    parts.push(await model.encodeImages(images.slice(i, i + size)));
    progress.update(Math.min(i + size, images.length));
  }
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
    batch: images.length,
    pixelCodes: cat((r) => r.pixelCodes, (n) => new Int32Array(n)),
    semanticCodes: cat((r) => r.semanticCodes, (n) => new Int32Array(n)),
    semanticFeatures: cat((r) => r.semanticFeatures, (n) => new Float32Array(n)),
    embedding: cat((r) => r.embedding, (n) => new Float32Array(n)),
  };
}

async function readPixelValues(path: string, model: DualToken): Promise<{ data: Float32Array; batch: number }> {
  const st = await openSafetensors(new MemoryReader(readFileSync(path), path));
  const info = st.info('pixel_values');
  if (!info) throw new Error(`${path}: no tensor 'pixel_values'`);
  const v = model.config.vision;
  const want = [info.shape[0], v.numChannels, v.imageSize, v.imageSize];
  if (info.shape.length !== 4 || info.shape.some((d, i) => d !== want[i])) throw new Error(`${path}: pixel_values is [${info.shape}], the model takes [B,${want.slice(1)}]`);
  return { data: toFloat32(await st.read('pixel_values'), info.dtype, `${path}: pixel_values`), batch: info.shape[0] };
}

function codesFile(model: DualToken, r: EncodeResult, files: string[] | undefined, json: boolean): Uint8Array | string {
  const [h, w, D] = model.config.quantPix.codeShape;
  const [hs, ws, Ds] = model.config.quantSem.codeShape;
  const C = model.config.vision.hiddenSize;
  const B = r.batch;
  if (json) {
    return JSON.stringify({ shape: [B, h, w, D], pixel: Array.from(r.pixelCodes), semantic_shape: [B, hs, ws, Ds], semantic: Array.from(r.semanticCodes), ...(files && { files }) });
  }
  return encodeSafetensors(
    {
      code_pix: { dtype: 'I32', shape: [B, h, w, D], data: r.pixelCodes },
      code_sem: { dtype: 'I32', shape: [B, hs, ws, Ds], data: r.semanticCodes },
      z_q_sem: { dtype: 'F32', shape: [B, hs * ws, C], data: r.semanticFeatures },
      pooler_output: { dtype: 'F32', shape: [B, C], data: r.embedding },
    },
    files && { files: JSON.stringify(files) },
  );
}

async function encodeCommand(args: ParsedArgs): Promise<void> {
  const out = need(args, 'out');
  const pvPath = args.flags.get('pixel-values');
  if (!pvPath && args.positionals.length === 0) throw new Error(`'encode' needs --pixel-values FILE or image files`);
  if (pvPath && args.positionals.length) throw new Error(`'encode' takes --pixel-values or image files, not both`);
  const format = args.flags.get('format') ?? (out.endsWith('.json') ? 'json' : 'safetensors');
  if (format !== 'json' && format !== 'safetensors') throw new Error(`--format ${format}: use json or safetensors`);
  const read = pvPath ? undefined : readImages(args.positionals);
  if (read && !read.images.length) throw new Error(`no image could be read (${read.failures.length} failed)`);
  const model = await openModel(args);
  try {
    let r: EncodeResult;
    if (pvPath) {
      const pv = await readPixelValues(pvPath, model);
      r = await model.encode(pv.data, pv.batch);
    } else {
      r = await encodeInBatches(model, read!.images, args);
    }
    writeFile(out, codesFile(model, r, read?.names, format === 'json'));
    if (!args.switches.has('quiet')) console.error(`encoded ${r.batch} image(s) -> ${out}`);
    await maybeProfile(args, [model.encoderProgram(Math.min(r.batch, positiveInt(args.flags.get('batch-size') ?? '4', '--batch-size')))]);
  } finally {
    model.dispose();
  }
  if (read?.failures.length) throw new PartialFailure(`${read.failures.length} of ${args.positionals.length} images failed; ${out} holds the other ${read.images.length}`);
}

async function readCodes(path: string): Promise<{ codes: Int32Array; shape: number[] }> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (path.endsWith('.json')) {
    let j: { shape?: unknown; pixel?: unknown };
    try {
      j = JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(j.shape) || !Array.isArray(j.pixel)) throw new Error(`${path}: expected token JSON {shape, pixel: [...]}`);
    if (!j.pixel.every((v) => Number.isInteger(v))) throw new Error(`${path}: 'pixel' must hold integers`);
    return { codes: Int32Array.from(j.pixel as number[]), shape: j.shape as number[] };
  }
  const st = await openSafetensors(new MemoryReader(bytes, path));
  const info = st.info('code_pix');
  if (!info) throw new Error(`${path}: no tensor 'code_pix'`);
  return { codes: toInt32(await st.read('code_pix'), info.dtype, `${path}: code_pix`), shape: info.shape };
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
  if (!out.endsWith('.safetensors') && !out.endsWith('.png')) throw new Error(`${out}: the output must end in .safetensors or .png`);
  if (args.positionals.length !== 1) throw new Error(`'decode' takes one codes file`);
  const codesPath = args.positionals[0];
  const { codes, shape } = await readCodes(codesPath);
  const model = await openModel(args);
  try {
    const want = model.config.quantPix.codeShape;
    if (shape.length !== 4 || shape.slice(1).some((d, i) => d !== want[i]) || codes.length !== shape.reduce((a, b) => a * b, 1)) {
      throw new Error(`${codesPath}: code_pix is [${shape}] with ${codes.length} values, the model takes [B,${want}]`);
    }
    const r = await model.decode(codes, shape[0]).catch((e: Error) => {
      throw new Error(`${codesPath}: ${e.message}`);
    });
    if (out.endsWith('.safetensors')) writeFile(out, encodeSafetensors({ recon: { dtype: 'F32', shape: r.shape, data: r.recon } }));
    else pngPaths(out, r.batch).forEach((p, i) => writeFile(p, encodePng(r.images[i])));
    if (!args.switches.has('quiet')) console.error(`decoded ${r.batch} image(s) -> ${out}`);
    await maybeProfile(args, [model.decoderProgram(r.batch)]);
  } finally {
    model.dispose();
  }
}

async function reconstructCommand(args: ParsedArgs): Promise<void> {
  const out = need(args, 'out');
  if (!args.positionals.length) throw new Error(`'reconstruct' needs an image file`);
  const many = args.positionals.length > 1;
  if (!many && !out.endsWith('.png')) throw new Error(`${out}: the output must be a .png file (or a folder for several images)`);
  const read = readImages(args.positionals);
  if (!read.images.length) throw new Error(`no image could be read (${read.failures.length} failed)`);
  const model = await openModel(args);
  try {
    const size = positiveInt(args.flags.get('batch-size') ?? '4', '--batch-size');
    const progress = new Progress('reconstructing', read.images.length, args.switches.has('quiet') || !many, process.stderr, ' images');
    for (let i = 0; i < read.images.length; i += size) {
      const codes = await model.encodeImages(read.images.slice(i, i + size));
      const r = await model.decode(codes.pixelCodes, codes.batch);
      read.names.slice(i, i + size).forEach((name, j) => {
        const path = many ? join(out, `${basename(name, extname(name))}.png`) : out;
        writeFile(path, encodePng(r.images[j]));
        if (!many && !args.switches.has('quiet')) console.error(`${name} -> ${path}`);
      });
      progress.update(Math.min(i + size, read.images.length));
    }
    await maybeProfile(args, [model.encoderProgram(Math.min(size, read.images.length)), model.decoderProgram(Math.min(size, read.images.length))]);
  } finally {
    model.dispose();
  }
  if (read.failures.length) throw new PartialFailure(`${read.failures.length} of ${args.positionals.length} images failed; the other ${read.images.length} were written`);
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
    const commands: Record<string, () => Promise<void>> = {
      encode: () => encodeCommand(args),
      decode: () => decodeCommand(args),
      reconstruct: () => reconstructCommand(args),
      info: () => infoCommand(need(args, 'model'), kernelOptions(args)),
      convert: () => convertCommand(args.positionals, args.flags, args.switches),
      bench: () =>
        benchCommand({
          model: args.flags.get('model'),
          preset: args.flags.get('preset') ?? 'siglip_384_rvq8',
          batches: (args.flags.get('batch') ?? '1,2').split(',').map((b) => positiveInt(b, '--batch')),
          reps: positiveInt(args.flags.get('reps') ?? '2', '--reps'),
          json: args.flags.get('json'),
          profile: args.switches.has('profile'),
          ...kernelOptions(args),
        }),
      demo: () => demoCommand(args.flags.get('out') ?? 'out/demo', args.switches.has('quiet'), args.flags.get('adapter')),
    };
    const run = commands[args.command];
    if (!run) throw new Error(`unknown command '${args.command}' (try 'dualtoken help')`);
    await run();
    return 0;
  } catch (e) {
    console.error(`dualtoken: ${(e as Error).message.replace(/\s*\n\s*/g, ' ')}`);
    return e instanceof PartialFailure ? 2 : 1;
  }
}

// Dawn's binding can keep Node alive after the work is done: exit explicitly.
main(process.argv.slice(2)).then((code) => process.exit(code));
