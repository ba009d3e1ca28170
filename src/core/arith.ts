// Two helpers every op file needs: ceiling division (workgroup counts, tiles) and a shape check
// whose message is built only when it fails.

/** ceil(a / b) for positive integers. */
export const cdiv = (a: number, b: number): number => Math.ceil(a / b);

/** Throws an Error with `msg()` when `cond` is false. */
export function expect(cond: boolean, msg: () => string): void {
  if (!cond) throw new Error(msg());
}
