// group_norm: torch.nn.GroupNorm(groups, C, eps, affine) [+ F.silu] on NCHW images, in the
// variant the adapter's choice gives (spec.ts): per-chunk statistics, their merge, normalisation.
import { cdiv, expect } from '../../core/arith.js';
import type { Program } from '../../core/program.js';
import { splitBatch, type SplitOptions } from '../../core/split.js';
import { Tensor, nchw, shapeStr } from '../../core/tensor.js';
import { variantsOf } from '../choice.js';

export interface GroupNormOptions extends SplitOptions {
  groups?: number;
  /** Apply SiLU to the normalised output (the decoder's GN -> nonlinearity pairs). */
  silu?: boolean;
  label?: string;
}

/** Values per groupnorm_stats invocation: enough chunks for parallelism, few enough to merge quickly. */
const GN_CHUNK = 512;
/** Values per groupnorm_stats_wg workgroup: its 256 invocations x 4 vec4s (fixed in the kernel). */
const GN_WG_CHUNK = 4096;

/**
 * torch.nn.GroupNorm(groups, C, eps, affine) [+ F.silu].  x [B,C,H,W] -> [B,C,H,W]
 * Variants (spec.ts): chunked (any size), vec4 and wg (H*W a multiple of 4).
 */
export function groupNorm(prog: Program, x: Tensor, gamma: Tensor, beta: Tensor, eps: number, opts: GroupNormOptions = {}): Tensor {
  const label = opts.label ?? gamma.label;
  const [B, C, H, W] = nchw(x, `group_norm ${label}`);
  const G = opts.groups ?? 32;
  expect(C % G === 0, () => `group_norm ${label}: ${C} channels are not divisible into ${G} groups`);
  expect(gamma.numel === C && beta.numel === C, () => `group_norm ${label}: weight ${shapeStr(gamma.shape)} / bias ${shapeStr(beta.shape)} for ${C} channels`);
  const HW = H * W;
  const S = (C / G) * HW;
  // vec4, wg: rows and batch slices must start on vec4 boundaries.
  const variant = variantsOf(prog.kernels).choose('group_norm', { HW, aligned: x.offset % 16 === 0 ? 1 : 0 }, () => `group_norm ${label} on ${shapeStr(x.shape)}`);
  const chunk = variant === 'wg' ? GN_WG_CHUNK : GN_CHUNK;
  const chunks = cdiv(S, chunk);
  const partials = prog.alloc([B * G, chunks, 2], `${label}.partials`);
  const stats = prog.alloc([B * G, 2], `${label}.stats`);
  const y = prog.alloc(x.shape, label);
  const quads = cdiv(HW, 4);
  const blocks = cdiv(quads, 4);
  splitBatch(prog, `group_norm ${label}`, B, [x, partials, stats, y], opts, (n, [xs, ps, ss, ys]) => {
    if (variant === 'wg') {
      prog.dispatch({
        kernel: 'groupnorm_stats_wg',
        uniforms: { BG: n * G, S, chunks, x_off: xs.off, part_off: ps.off },
        bind: { x: xs.t, partials: ps.t },
        groups: n * G * chunks,
        cost: { bytes: 4 * n * C * HW },
      });
      prog.dispatch({
        kernel: 'groupnorm_stats_combine_wg',
        uniforms: { BG: n * G, S, chunk, chunks, eps, part_off: ps.off, stats_off: ss.off },
        bind: { partials: ps.t, stats: ss.t },
        groups: n * G,
        cost: { bytes: 4 * n * G * (2 * chunks + 2) },
      });
    } else {
      prog.dispatch({
        kernel: variant === 'vec4' ? 'groupnorm_stats_vec4' : 'groupnorm_stats',
        uniforms: { B: n, G, S, chunk, chunks, x_off: xs.off, part_off: ps.off },
        bind: { x: xs.t, partials: ps.t },
        groups: cdiv(n * G * chunks, 64),
        cost: { bytes: 4 * n * C * HW },
      });
      prog.dispatch({
        kernel: 'groupnorm_stats_combine',
        uniforms: { BG: n * G, S, chunk, chunks, eps, part_off: ps.off, stats_off: ss.off },
        bind: { partials: ps.t, stats: ss.t },
        groups: cdiv(n * G, 64),
        cost: { bytes: 4 * n * G * (2 * chunks + 2) },
      });
    }
    if (variant !== 'chunked') {
      prog.dispatch({
        kernel: 'groupnorm_vec4',
        uniforms: { silu: opts.silu ? 1 : 0, B: n, C, G, HW4: quads, blocks, x_off: xs.off, stats_off: ss.off, y_off: ys.off },
        bind: { x: xs.t, stats: ss.t, gamma, beta, y: ys.t },
        groups: cdiv(n * C * blocks, 64),
        cost: { bytes: 8 * n * C * HW },
      });
    } else {
      prog.dispatch({
        kernel: 'groupnorm',
        uniforms: { silu: opts.silu ? 1 : 0, B: n, C, G, HW, quads, x_off: xs.off, stats_off: ss.off, y_off: ys.off },
        bind: { x: xs.t, stats: ss.t, gamma, beta, y: ys.t },
        groups: cdiv(n * C * quads, 64),
        cost: { bytes: 8 * n * C * HW },
      });
    }
  });
  return y;
}

