// Small helpers shared across the engine: ceiling division (workgroup counts, tiles), a shape
// check whose message is built only when it fails, and the median every benchmark reports.

/** ceil(a / b) for positive integers. */
export const cdiv = (a: number, b: number): number => Math.ceil(a / b);

/** Throws an Error with `msg()` when `cond` is false. */
export function expect(cond: boolean, msg: () => string): void {
  if (!cond) throw new Error(msg());
}

/** The median of `v` (the mean of the two middle values for an even count). */
export function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
