// Node reads the WGSL kernels from the package's shaders/ folder.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ShaderSources } from '../core/kernels.js';

/** shaders/ next to src/ and dist/, or DUALTOKEN_SHADERS (a bundled CLI carried elsewhere). */
export const SHADER_DIR = process.env.DUALTOKEN_SHADERS ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shaders');

let cached: ShaderSources | undefined;

export function loadShaders(dir = SHADER_DIR): ShaderSources {
  if (dir === SHADER_DIR && cached) return cached;
  const out: ShaderSources = {};
  for (const f of readdirSync(dir)) {
    if (f.endsWith('.wgsl')) out[f.slice(0, -5)] = readFileSync(join(dir, f), 'utf8');
  }
  if (dir === SHADER_DIR) cached = out;
  return out;
}
