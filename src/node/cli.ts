#!/usr/bin/env node
// dualtoken: the command line. Each command prints a one-line error and exits non-zero on failure.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { MemoryReader } from '../core/bytes.js';
import { toFloat32, toInt32 } from '../core/dtype.js';
import { encodeSafetensors, openSafetensors } from '../core/safetensors.js';
import type { DualToken } from '../model/dualtoken.js';
import { parseArgs, type ParsedArgs } from './args.js';
import { loadDualToken } from './load.js';

const USAGE = `usage:
  dualtoken encode --model DIR [--pixel-values FILE.safetensors] [IMAGE ...] --out OUT.safetensors|OUT.json
  dualtoken decode --model DIR CODES.safetensors|CODES.json --out OUT.safetensors|OUT.png
  dualtoken reconstruct --model DIR IMAGE --out OUT.png
  dualtoken info --model DIR
  dualtoken demo [--out DIR]
common options: --adapter auto|cpu|ICD.json, --quiet`;

const VALUE_FLAGS = ['model', 'pixel-values', 'out', 'adapter', 'format'];
const SWITCHES = ['quiet', 'help'];

function need(args: ParsedArgs, flag: string): string {
  const v = args.flags.get(flag);
  if (!v) throw new Error(`'${args.command}' needs --${flag}`);
  return v;
}

function writeFile(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

async function readPixelValues(path: string): Promise<{ data: Float32Array; batch: number; shape: number[] }> {
  const st = await openSafetensors(new MemoryReader(readFileSync(path), path));
  const info = st.info('pixel_values');
  if (!info) throw new Error(`${path}: no tensor 'pixel_values'`);
  if (info.shape.length !== 4) throw new Error(`${path}: pixel_values must be [B,3,S,S], got [${info.shape}]`);
  return { data: toFloat32(await st.read('pixel_values'), info.dtype, `${path}: pixel_values`), batch: info.shape[0], shape: info.shape };
}

function checkPixelShape(model: DualToken, shape: number[], path: string): void {
  const v = model.config.vision;
  const want = [shape[0], v.numChannels, v.imageSize, v.imageSize];
  if (shape.some((d, i) => d !== want[i])) throw new Error(`${path}: pixel_values is [${shape}], the model takes [${want}]`);
}

async function encodeCommand(args: ParsedArgs): Promise<void> {
  const out = need(args, 'out');
  const pvPath = args.flags.get('pixel-values');
  if (!pvPath && args.positionals.length === 0) throw new Error(`'encode' needs --pixel-values FILE or image files`);
  if (pvPath && args.positionals.length) throw new Error(`'encode' takes --pixel-values or image files, not both`);
  const model = await loadDualToken(need(args, 'model'), { adapter: args.flags.get('adapter') });
  try {
    let pixels: Float32Array;
    let batch: number;
    if (pvPath) {
      const pv = await readPixelValues(pvPath);
      checkPixelShape(model, pv.shape, pvPath);
      pixels = pv.data;
      batch = pv.batch;
    } else {
      throw new Error(`image files are not supported yet; pass --pixel-values`);
    }
    const r = await model.encode(pixels, batch);
    const [h, w, D] = model.config.quantPix.codeShape;
    const [hs, ws, Ds] = model.config.quantSem.codeShape;
    const C = model.config.vision.hiddenSize;
    if (out.endsWith('.json') || args.flags.get('format') === 'json') {
      writeFile(out, JSON.stringify({ shape: [batch, h, w, D], pixel: Array.from(r.pixelCodes), semantic_shape: [batch, hs, ws, Ds], semantic: Array.from(r.semanticCodes) }));
    } else {
      writeFile(
        out,
        encodeSafetensors({
          code_pix: { dtype: 'I32', shape: [batch, h, w, D], data: r.pixelCodes },
          code_sem: { dtype: 'I32', shape: [batch, hs, ws, Ds], data: r.semanticCodes },
          z_q_sem: { dtype: 'F32', shape: [batch, hs * ws, C], data: r.semanticFeatures },
          pooler_output: { dtype: 'F32', shape: [batch, C], data: r.embedding },
        }),
      );
    }
    if (!args.switches.has('quiet')) console.error(`encoded ${batch} image(s) -> ${out}`);
  } finally {
    model.dispose();
  }
}

async function readCodes(path: string): Promise<{ codes: Int32Array; shape: number[] }> {
  const bytes = readFileSync(path);
  if (path.endsWith('.json')) {
    let j: { shape?: number[]; pixel?: number[] };
    try {
      j = JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(j.shape) || !Array.isArray(j.pixel)) throw new Error(`${path}: expected {shape, pixel: [...]} token JSON`);
    if (!j.pixel.every((v) => Number.isInteger(v))) throw new Error(`${path}: 'pixel' must hold integers`);
    return { codes: Int32Array.from(j.pixel), shape: j.shape };
  }
  const st = await openSafetensors(new MemoryReader(bytes, path));
  const info = st.info('code_pix');
  if (!info) throw new Error(`${path}: no tensor 'code_pix'`);
  return { codes: toInt32(await st.read('code_pix'), info.dtype, `${path}: code_pix`), shape: info.shape };
}

async function decodeCommand(args: ParsedArgs): Promise<void> {
  const out = need(args, 'out');
  if (args.positionals.length !== 1) throw new Error(`'decode' takes one codes file`);
  const codesPath = args.positionals[0];
  const { codes, shape } = await readCodes(codesPath);
  const model = await loadDualToken(need(args, 'model'), { adapter: args.flags.get('adapter') });
  try {
    const want = model.config.quantPix.codeShape;
    if (shape.length !== 4 || shape.slice(1).some((d, i) => d !== want[i])) throw new Error(`${codesPath}: code_pix is [${shape}], the model takes [B,${want}]`);
    const r = await model.decode(codes, shape[0]);
    if (out.endsWith('.safetensors')) {
      writeFile(out, encodeSafetensors({ recon: { dtype: 'F32', shape: r.shape, data: r.recon } }));
    } else {
      throw new Error(`${out}: only .safetensors output is supported yet`);
    }
    if (!args.switches.has('quiet')) console.error(`decoded ${r.batch} image(s) -> ${out}`);
  } finally {
    model.dispose();
  }
}

export async function main(argv: string[]): Promise<number> {
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, VALUE_FLAGS, SWITCHES);
    if (args.switches.has('help') || args.command === 'help') {
      console.log(USAGE);
      return 0;
    }
    switch (args.command) {
      case 'encode':
        await encodeCommand(args);
        break;
      case 'decode':
        await decodeCommand(args);
        break;
      default:
        throw new Error(`unknown command '${args.command}' (try 'dualtoken help')`);
    }
    return 0;
  } catch (e) {
    console.error(`dualtoken: ${(e as Error).message.replace(/\s*\n\s*/g, ' ')}`);
    return 1;
  }
}

// Dawn's binding can keep Node alive after the work is done: exit explicitly.
main(process.argv.slice(2)).then((code) => process.exit(code));
