// Node reads the WGSL kernels from the package: shaders/ (the single-kernel ops, preprocessing,
// checks) and src/ops/<op>/ (the op modules' variants), each file's name being its kernel's.
import { readdirSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ShaderSources } from '../core/kernels.js';

/** The kernels' folders in a checkout or package rooted at `root`. */
export function shaderDirs(root: string): string[] {
  return [join(root, 'shaders'), join(root, 'src', 'ops')];
}

/**
 * Where the kernels are: DUALTOKEN_SHADERS (folders separated by the platform's path delimiter,
 * e.g. for a bundled CLI carried elsewhere), else those next to src/ and dist/.
 */
export const SHADER_DIRS: string[] = process.env.DUALTOKEN_SHADERS ? process.env.DUALTOKEN_SHADERS.split(delimiter) : shaderDirs(join(dirname(fileURLToPath(import.meta.url)), '..', '..'));

let cached: ShaderSources | undefined;

/** Every *.wgsl under `dirs` (searched recursively) by file name; two files of one name are an error. */
export function loadShaders(dirs: string[] = SHADER_DIRS): ShaderSources {
  if (dirs === SHADER_DIRS && cached) return cached;
  const out: ShaderSources = {};
  const where: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.wgsl')) {
        const name = e.name.slice(0, -5);
        if (where[name]) throw new Error(`two kernels named '${name}': ${where[name]} and ${path}`);
        where[name] = path;
        out[name] = readFileSync(path, 'utf8');
      }
    }
  };
  for (const d of dirs) walk(d);
  if (dirs === SHADER_DIRS) cached = out;
  return out;
}
