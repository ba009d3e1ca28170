// The activations' memory plan, pure logic (no GPU calls): each activation's lifetime is the first
// and the last recorded dispatch that bind it; pinned activations get buffers of their own, the
// others share buffers whenever their lifetimes do not overlap, by the better of two greedy
// interval assignments (planByFirstUse, planBySize). Program (program.ts) records the lifetimes
// while ops dispatch and creates the plan's buffers when it is finalized.
import type { Activation } from './tensor.js';

/** An activation's lifetime: the first and the last dispatch that bind it (any view or slice of it). */
export interface Lifetime {
  act: Activation;
  first: number;
  last: number;
  /** Dispatches recorded when it was allocated (the lifetime of one no dispatch binds). */
  at: number;
  /** Its last dispatch writes it: a result nothing in the pass reads, kept to the end (for reading back). */
  endsInWrite: boolean;
}

/** One buffer of the plan: its size and the activations that use it, in dispatch order, lifetimes disjoint. */
export interface Slot {
  bytes: number;
  tenants: Lifetime[];
}

/** Where the activations live: pinned ones in buffers of their own, the others in shared slots. */
export interface MemoryPlan {
  slots: Slot[];
  pinned: Lifetime[];
  bytes: number;
}

/** Every activation of a program with the dispatches that bind it (first, last; -1 before any). */
export class Lifetimes {
  readonly all: Lifetime[] = [];
  private readonly of = new Map<Activation, Lifetime>();
  /** Test hook (Program.shortenLifetimeForTest): activations whose last use the plan is told is earlier. */
  private readonly shortened = new Map<Activation, number>();

  /** A new activation, allocated when `at` dispatches were recorded. */
  add(act: Activation, at: number): void {
    const l = { act, first: -1, last: -1, at, endsInWrite: false };
    this.all.push(l);
    this.of.set(act, l);
  }

  /** Dispatch `index` (the latest) binds `act`, and writes it if `writes`. Other programs' activations are ignored. */
  extend(act: Activation, index: number, writes: boolean): void {
    const l = this.of.get(act);
    if (!l) return;
    if (l.first < 0) l.first = index;
    l.endsInWrite = l.last === index ? l.endsInWrite || writes : writes;
    l.last = index;
  }

  /** The plan is told that the last use of `act` comes `dispatches` dispatches earlier than recorded. */
  shorten(act: Activation, dispatches: number): void {
    this.shortened.set(act, dispatches);
  }

  /**
   * The activations' lifetimes -> buffers: pinned activations alone, the others in shared
   * buffers, by whichever of two greedy interval assignments needs fewer bytes (planByFirstUse,
   * planBySize). A buffer is as large as its largest activation; two activations share it only if
   * no dispatch binds both lifetimes' ranges (lifetimes are inclusive: one ending at dispatch i
   * and one starting at i never share). An activation whose last dispatch writes it (nothing in
   * the pass reads that: a result, e.g. an op's output in a test) lives to the end of the pass
   * (`dispatches`, the count recorded), so that it can be read back even unpinned.
   */
  plan(dispatches: number): MemoryPlan {
    const pinned: Lifetime[] = [];
    const shared: Lifetime[] = [];
    for (const l of this.all) {
      if (l.act.pinned) pinned.push(l);
      else if (l.first < 0) shared.push({ ...l, first: l.at, last: l.at }); // bound by nothing: any buffer
      else {
        const cut = this.shortened.get(l.act) ?? 0;
        if (cut) shared.push({ ...l, last: Math.max(l.first, l.last - cut) });
        else shared.push(l.endsInWrite ? { ...l, last: dispatches } : l);
      }
    }
    const byFirstUse = planByFirstUse(shared);
    const bySize = planBySize(shared);
    const slots = planBytes(bySize, []) < planBytes(byFirstUse, []) ? bySize : byFirstUse;
    return { slots, pinned, bytes: planBytes(slots, pinned) };
  }
}

/** The activation that reuses the memory of `act` after its last dispatch, if any (pinned ones have none). */
export function reusedBy(plan: MemoryPlan, act: Activation): Lifetime | undefined {
  const slot = plan.slots.find((s) => s.tenants.some((l) => l.act === act));
  return slot && slot.tenants[slot.tenants.findIndex((l) => l.act === act) + 1];
}

/** Poisoning: for each dispatch, the slots whose tenant ends there and that a later tenant reuses. */
export function poisonPoints(plan: MemoryPlan): Map<number, Slot[]> {
  const after = new Map<number, Slot[]>();
  for (const slot of plan.slots) {
    for (const t of slot.tenants.slice(0, -1)) {
      const list = after.get(t.last) ?? [];
      list.push(slot);
      after.set(t.last, list);
    }
  }
  return after;
}

const roundUp16 = (n: number) => Math.ceil(n / 16) * 16;

function planBytes(slots: Slot[], pinned: Lifetime[]): number {
  return slots.reduce((s, slot) => s + roundUp16(slot.bytes), 0) + pinned.reduce((s, l) => s + roundUp16(l.act.bytes), 0);
}

const overlaps = (a: Lifetime, b: Lifetime) => a.first <= b.last && b.first <= a.last;

/**
 * In order of first use, each activation takes the smallest free buffer that holds it, else the
 * largest free one (grown to fit), else a new one.
 */
function planByFirstUse(lifetimes: Lifetime[]): Slot[] {
  const slots: Slot[] = [];
  const order = [...lifetimes].sort((a, b) => a.first - b.first || a.act.id - b.act.id);
  for (const l of order) {
    let fit: Slot | undefined;
    let largest: Slot | undefined;
    for (const slot of slots) {
      if (slot.tenants[slot.tenants.length - 1].last >= l.first) continue; // still in use
      if (slot.bytes >= l.act.bytes && (!fit || slot.bytes < fit.bytes)) fit = slot;
      if (!largest || slot.bytes > largest.bytes) largest = slot;
    }
    const slot = fit ?? largest;
    if (slot) {
      slot.bytes = Math.max(slot.bytes, l.act.bytes);
      slot.tenants.push(l);
    } else slots.push({ bytes: l.act.bytes, tenants: [l] });
  }
  return slots;
}

/**
 * Largest first (greedy by size): each activation takes the smallest buffer none of whose
 * activations' lifetimes overlaps its own (every buffer is at least as large), else a new one.
 */
function planBySize(lifetimes: Lifetime[]): Slot[] {
  const slots: Slot[] = [];
  const order = [...lifetimes].sort((a, b) => b.act.bytes - a.act.bytes || a.first - b.first || a.act.id - b.act.id);
  for (const l of order) {
    let best: Slot | undefined;
    for (const slot of slots) {
      if (best && slot.bytes >= best.bytes) continue;
      if (!slot.tenants.some((t) => overlaps(t, l))) best = slot;
    }
    if (best) best.tenants.push(l);
    else slots.push({ bytes: l.act.bytes, tenants: [l] });
  }
  for (const slot of slots) slot.tenants.sort((a, b) => a.first - b.first);
  return slots;
}
