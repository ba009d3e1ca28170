// Opening weight files from disk.
import { openSafetensors } from '../core/safetensors.js';
import type { TensorSource } from '../core/tensor-source.js';
import { FileReader } from './file.js';

export async function openSafetensorsFile(path: string): Promise<TensorSource> {
  const reader = await FileReader.open(path);
  try {
    return await openSafetensors(reader);
  } catch (e) {
    await reader.close();
    throw e;
  }
}
