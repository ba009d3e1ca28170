// Finiteness checks' bookkeeping (Program.checkFinite): each recorded check_finite dispatch counts
// the NaNs and Infs of a tensor into a slot of a small status buffer of the program's own (never
// an activation: an earlier dispatch of the same pass could write a shared buffer). The statuses
// of checks recorded for every run are cleared before each run; those of checks submitted at once
// (runNow) once, at creation. All are read back with a run's outputs; a hit fails the run with a
// NonFiniteError naming the check.
import { Tensor } from './tensor.js';

/** A run's finiteness check (Program.checkFinite) found NaN or Inf values. */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
}

/** What a finiteness check found. */
export interface NonFinite {
  nans: number;
  infs: number;
  /** Flat index of the first non-finite value. */
  first: number;
}

/** "1 non-finite value (Inf at index 1234)", "3 non-finite values (2 NaN, 1 Inf; the first at index 17)". */
export function describeNonFinite({ nans, infs, first }: NonFinite): string {
  const count = nans + infs;
  const kinds = [nans && `${nans} NaN`, infs && `${infs} Inf`].filter(Boolean).join(', ');
  return count === 1 ? `1 non-finite value (${nans ? 'NaN' : 'Inf'} at index ${first})` : `${count} non-finite values (${kinds}; the first at index ${first})`;
}

/** Finiteness checks per status buffer: 4 words each (NaNs, Infs, first index, unused), see check_finite.wgsl. */
const CHECKS_PER_STATUS = 256;

/** A status buffer before any check: per check no NaN, no Inf, a first index of none. */
const CHECKS_CLEARED = new Uint32Array(4 * CHECKS_PER_STATUS).map((_, i) => (i % 4 === 2 ? 0xffffffff : 0));

/** A recorded finiteness check: where it counts, and what a failure says. */
interface FiniteCheck {
  status: Tensor;
  slot: number;
  describe: (found: NonFinite) => string;
}

/** A program's finiteness checks and their status buffers. */
export class FiniteChecks {
  private readonly checks: FiniteCheck[] = [];
  /** Status buffers of the checks recorded for every run: cleared before each. */
  private readonly forRuns: Tensor[] = [];
  /** Status buffers of the checks submitted at once (checkFinite `now`): cleared once, at creation. */
  private readonly submittedNow: Tensor[] = [];

  constructor(
    /** A new buffer of the program's own. */
    private readonly newBuffer: (bytes: number, label: string) => GPUBuffer,
    private readonly queue: () => GPUQueue,
  ) {}

  /** Every status buffer, in the order throwIfFound takes their contents. */
  get statuses(): Tensor[] {
    return [...this.forRuns, ...this.submittedNow];
  }

  /**
   * Adds a check once `record` has recorded (or submitted) its dispatch counting into `status` at
   * `slot`: the next free slot, in a new status buffer when the last one is full.
   */
  add(now: boolean, describe: (found: NonFinite) => string, record: (status: Tensor, slot: number) => void): void {
    const list = now ? this.submittedNow : this.forRuns;
    const slot = this.checks.filter((c) => list.includes(c.status)).length % CHECKS_PER_STATUS;
    if (slot === 0) {
      const status = new Tensor(this.newBuffer(16 * CHECKS_PER_STATUS, 'finite checks'), [4 * CHECKS_PER_STATUS], 'u32', 0, 'finite checks');
      status.pinned = true;
      if (now) this.queue().writeBuffer(status.buffer, 0, CHECKS_CLEARED);
      list.push(status);
    }
    const status = list[list.length - 1];
    record(status, slot);
    this.checks.push({ status, slot, describe });
  }

  /** Clears the statuses of the checks recorded for every run (before a run's submission). */
  clearForRun(): void {
    for (const status of this.forRuns) this.queue().writeBuffer(status.buffer, status.offset, CHECKS_CLEARED);
  }

  /** Throws the first failed check of a run, given the contents of `statuses` as read back (`found`). */
  throwIfFound(label: string, statuses: Tensor[], found: ArrayBuffer[]): void {
    const byStatus = new Map(statuses.map((t, i) => [t, found[i]]));
    for (const check of this.checks) {
      const [nans, infs, first] = new Uint32Array(byStatus.get(check.status)!, 16 * check.slot, 3);
      if (nans + infs > 0) throw new NonFiniteError(`${label}: ${check.describe({ nans, infs, first })}`);
    }
  }
}
