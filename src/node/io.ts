// Files in and out for the CLI: images read one at a time (so that a batch holds only its own
// pixels), outputs written atomically (src/node/output.ts).
import { readFileSync } from 'node:fs';
import type { RgbImage } from '../core/image.js';
import { decodeImage, type DecodeOptions } from './decode.js';
import { errorCode } from './messages.js';

export { writeFile } from './output.js';

/** A whole input file; a failure is `PATH: cannot read (CODE)`. */
export function readBytes(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${errorCode(e)})`);
  }
}

/** A JSON file; a failure is `PATH: cannot read (CODE)` or `PATH: not valid JSON (...)`. */
export function readJson(path: string): Record<string, unknown> {
  const text = readBytes(path).toString('utf8');
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** Reads and decodes one image; every failure is one line naming the file. */
export function readImage(path: string, opts: DecodeOptions = {}): RgbImage {
  return decodeImage(readBytes(path), path, opts);
}
