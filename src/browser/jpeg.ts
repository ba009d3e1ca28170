// JPEG files in the browser, decoded exactly as Pillow decodes them: libjpeg-turbo in WebAssembly
// (the module src/node/decode.ts uses; src/core/jpeg.ts drives it), its bytes embedded in the web
// bundle by scripts/build-web.mjs (`virtual:jpeg-turbo-wasm`, ~140 KB). Only meaningful inside
// that bundle: tsc's own output of this file (dist/browser/) imports a module that exists only for
// esbuild. The module is compiled once, asynchronously; each image gets its own instance (the
// browser may refuse synchronous compiles on the main thread, and a fresh instance's memory is
// freed with it).
import wasm from 'virtual:jpeg-turbo-wasm';
import type { RgbImage } from '../core/image.js';
import { decodeJpegFile, jpegTurbo, jpegTurboImports, readJpegForDecode } from '../core/jpeg.js';

let compiled: Promise<WebAssembly.Module> | undefined;

/** JPEG bytes -> Pillow's RGB; EXIF orientation applied only with `exifRotate`. Failures name `label`. */
export async function decodeJpegBytes(bytes: Uint8Array, label: string, exifRotate = false): Promise<RgbImage> {
  const header = readJpegForDecode(bytes, label);
  compiled ??= WebAssembly.compile(wasm as Uint8Array<ArrayBuffer>);
  const host = jpegTurboImports();
  const instance = await WebAssembly.instantiate(await compiled, host.imports);
  return decodeJpegFile(jpegTurbo(instance, host), bytes, header, label, exifRotate);
}
