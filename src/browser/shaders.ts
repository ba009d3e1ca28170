// The WGSL kernels, bundled into the web build by scripts/build-web.mjs (a virtual module made
// from shaders/*.wgsl at build time). Only meaningful inside that bundle: tsc's own output of
// this file (dist/browser/) imports a module that exists only for esbuild.
import type { ShaderSources } from '../core/kernels.js';
import bundled from 'virtual:shaders';

export const SHADERS: ShaderSources = bundled;
