// The messages between the page (worker-client.ts) and the engine's Web Worker (worker.ts).
// Types only: neither side imports the other's code.
import type { DualTokenConfig } from '../core/config.js';
import type { RgbImage } from '../core/image.js';
import type { LoadProgress } from '../core/weights.js';
import type { DecodeResult, EncodeResult, GpuMemory } from '../model/dualtoken.js';
import type { ClassifyResult } from '../model/text-model.js';
import type { HttpReaderStats } from './http-reader.js';

/** An image sent to the worker: an encoded file (Blob/File, or its bytes as an ArrayBuffer), an ImageBitmap, ImageData or 8-bit RGB. */
export type WorkerImage = Blob | ArrayBuffer | ImageBitmap | ImageData | RgbImage;

/** What of loadDualTokenFromUrl's options can cross to the worker (no functions, no device). */
export interface WorkerLoadSettings {
  precision?: 'f32' | 'f16';
  kernels?: Record<string, string>;
  programsPerStage?: number;
  allowNonFinite?: boolean;
  powerPreference?: GPUPowerPreference;
  allowFallback?: boolean;
  asyncPipelines?: boolean;
  prepare?: number[];
  /** Cache API cache name, or false for no caching (HttpReaderOptions.cache). */
  cache?: string | false;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Weights file name inside the folder. */
  weights?: string;
}

export interface WorkerModelInfo {
  config: DualTokenConfig;
  imageSize: number;
  adapter: string;
  download: HttpReaderStats | undefined;
  loadMs: number;
  kernelChoice: Record<string, string>;
}

export type WorkerRequest =
  | { id: number; op: 'load'; url: string; settings: WorkerLoadSettings }
  | { id: number; op: 'encodeImages'; images: WorkerImage[]; exifRotate?: boolean; returnInputs?: boolean }
  | { id: number; op: 'encode'; pixelValues: Float32Array; batch: number }
  | { id: number; op: 'decode'; pixelCodes: Int32Array; batch: number }
  | { id: number; op: 'classify'; images: WorkerImage[]; texts: string[]; exifRotate?: boolean }
  | { id: number; op: 'memory' }
  | { id: number; op: 'dispose' };

/** encodeImages' result; with `returnInputs`, also the S x S 8-bit images the model saw (resized, center-cropped). */
export interface EncodeImagesResult extends EncodeResult {
  inputs?: RgbImage[];
}

/**
 * classify's result: ClassifyResult (sigmoid probabilities per image and text), plus what loading
 * the text tower took when this call loaded it (its tensors are read through the same HTTP range
 * reader and Cache API as the image weights; `tokenizer.json` comes from beside the model).
 */
export interface WorkerClassifyResult extends ClassifyResult {
  textLoad?: { ms: number; download: HttpReaderStats };
}

export type WorkerResult = WorkerModelInfo | EncodeImagesResult | DecodeResult | WorkerClassifyResult | GpuMemory | undefined;

export type WorkerResponse =
  | { id: number; ok: true; result: WorkerResult }
  | { id: number; ok: false; error: { name: string; message: string; stack?: string } }
  | { id: number; progress: LoadProgress }
  | { id: 0; ready: true };
