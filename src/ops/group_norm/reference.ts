// group_norm's float64 reference: torch.nn.GroupNorm(G, C, eps, affine) [+ F.silu], two-pass statistics.
import { everyElement } from '../case-kit.js';

/** Element i of GroupNorm [+ SiLU] on x [B,C,H,W] (HW = H*W); each group's statistics computed once, on first use. */
export function groupNormAt(x: Float32Array, C: number, HW: number, G: number, gamma: Float32Array, beta: Float32Array, eps: number, silu: boolean): (i: number) => number {
  const S = (C / G) * HW;
  const stats = new Map<number, [number, number]>();
  const groupStats = (seg: number): [number, number] => {
    let st = stats.get(seg);
    if (st) return st;
    let sum = 0;
    for (let i = 0; i < S; i++) sum += x[seg * S + i];
    const mean = sum / S;
    let sq = 0;
    for (let i = 0; i < S; i++) sq += (x[seg * S + i] - mean) ** 2;
    st = [mean, 1 / Math.sqrt(sq / S + eps)];
    stats.set(seg, st);
    return st;
  };
  return (i) => {
    const [mean, rstd] = groupStats(Math.floor(i / S));
    const c = Math.floor(i / HW) % C;
    const v = (x[i] - mean) * rstd * gamma[c] + beta[c];
    return silu ? v / (1 + Math.exp(-v)) : v;
  };
}

/** Every element of groupNormAt. */
export function groupNormRef(x: Float32Array, B: number, C: number, HW: number, G: number, gamma: Float32Array, beta: Float32Array, eps: number, silu: boolean): Float64Array {
  return everyElement(B * C * HW, groupNormAt(x, C, HW, G, gamma, beta, eps, silu));
}
