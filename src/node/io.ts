// Files in and out for the CLI.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RgbImage } from '../core/image.js';
import { decodeImage } from './decode.js';

export function writeFile(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

/** Decodes every image it can; each failure is reported on stderr (one line) and left out. */
export function readImages(paths: string[]): { images: RgbImage[]; names: string[]; failures: string[] } {
  const images: RgbImage[] = [];
  const names: string[] = [];
  const failures: string[] = [];
  for (const path of paths) {
    try {
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch (e) {
        throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      images.push(decodeImage(bytes, path));
      names.push(path);
    } catch (e) {
      failures.push((e as Error).message);
    }
  }
  for (const f of failures) console.error(`dualtoken: ${f}`);
  return { images, names, failures };
}
