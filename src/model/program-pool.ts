// DualToken's recorded programs, one per stage (encode, decode) and batch size: the least recently
// used beyond programsPerStage freed (never one with calls queued or running), the originals of
// weights read only through packed layouts freed once no program binds them, and the GPU memory.
import type { KernelLibrary } from '../core/kernels.js';
import { Program } from '../core/program.js';
import type { Tensor } from '../core/tensor.js';
import { variantsOf } from '../ops/choice.js';
import type { Weights } from '../core/weights.js';
import type { GpuMemory } from './dualtoken-types.js';

export type Stage = 'encode' | 'decode';

export interface Compiled {
  prog: Program;
  input: Tensor;
  outputs: Tensor[];
  /** Calls queued or running on it: a program is never freed while it has any. */
  busy: number;
}

export class ProgramPool {
  /** By batch size; maps keep insertion order: least recently used first. */
  private readonly stages: Record<Stage, Map<number, Compiled>> = { encode: new Map(), decode: new Map() };
  private peakBytes = 0;

  constructor(
    private readonly kernels: KernelLibrary,
    private readonly weights: Weights,
    private readonly keepTaps: boolean,
    private readonly programsPerStage: number,
    private readonly onNewProgram?: (prog: Program) => void,
  ) {}

  /**
   * The stage's program for `batch`, recorded on first use (its outputs pinned); then the least
   * recently used ones beyond programsPerStage are freed, and so are the weights only packed
   * layouts are read through.
   */
  get(stage: Stage, batch: number, label: string, record: (prog: Program) => { input: Tensor; outputs: Tensor[] }): Compiled {
    const map = this.stages[stage];
    let c = this.touch(map, batch);
    if (!c) {
      const prog = this.newProgram(label);
      const { input, outputs } = record(prog);
      for (const t of outputs) t.pinned = true;
      c = { prog, input, outputs, busy: 0 };
      map.set(batch, c);
      this.evict(map);
      this.releaseUnboundOriginals();
      this.onNewProgram?.(prog);
    }
    return c;
  }

  /** After a call settles: evicts in both stages again (the program it kept busy may now go). */
  evictAll(): void {
    this.evict(this.stages.encode);
    this.evict(this.stages.decode);
  }

  /** Frees every program (the caller has checked that none has calls left). */
  freeAll(): void {
    for (const c of this.all()) this.free(c);
    this.stages.encode.clear();
    this.stages.decode.clear();
  }

  /** GPU memory held now, and the peak so far, counting also a program being recorded. */
  measure(recording?: Program): GpuMemory {
    let programs = recording?.allocatedBytes ?? 0;
    for (const c of this.all()) programs += c.prog.allocatedBytes + c.input.buffer.size;
    const m = { weights: this.weights.byteLength, packed: this.weights.packedByteLength, programs, peak: 0 };
    this.peakBytes = Math.max(this.peakBytes, m.weights + m.packed + m.programs);
    return { ...m, peak: this.peakBytes };
  }

  /** The program of `batch`, now the most recently used. */
  private touch(map: Map<number, Compiled>, batch: number): Compiled | undefined {
    const c = map.get(batch);
    if (c) {
      map.delete(batch);
      map.set(batch, c);
    }
    return c;
  }

  /** Frees the least recently used programs beyond programsPerStage, skipping those with calls queued or running, and the newest. */
  private evict(map: Map<number, Compiled>): void {
    const entries = [...map.entries()].slice(0, -1);
    for (const [batch, c] of entries) {
      if (map.size <= this.programsPerStage) return;
      if (c.busy > 0) continue;
      map.delete(batch);
      this.free(c);
    }
  }

  private all(): Compiled[] {
    return [...this.stages.encode.values(), ...this.stages.decode.values()];
  }

  private free(c: Compiled): void {
    c.prog.destroy();
    c.input.buffer.destroy(); // the outputs are the program's own buffers
  }

  /** A program whose packed weights give their memory back (see freeOriginal). */
  private newProgram(label: string): Program {
    const prog = new Program(this.kernels, label, this.keepTaps);
    prog.onPacked = (w) => this.freeOriginal(w, prog);
    return prog;
  }

  /**
   * A weight was just packed (the kn / gemm variants' transposed or f16 copy): its original is
   * freed unless a recorded dispatch binds it, so the two never sit side by side for long (the
   * peak stays near the loaded size). Only when every linear and conv call reads one layout
   * whatever the shape class (variants.singleWeightLayout), so no later recording needs it.
   */
  private freeOriginal(w: Tensor, recording: Program): void {
    if (!variantsOf(this.kernels).singleWeightLayout()) return;
    this.measure(recording); // the peak: the packed copy made, the original not yet freed
    this.weights.releaseOriginal(w, this.boundBuffers(recording));
  }

  /** After a recording: freeOriginal for every packed weight no program binds. */
  private releaseUnboundOriginals(): void {
    if (!variantsOf(this.kernels).singleWeightLayout()) return;
    this.measure();
    this.weights.releasePackedOriginals(this.boundBuffers());
  }

  private boundBuffers(extra?: Program): Set<GPUBuffer> {
    const bound = new Set<GPUBuffer>(extra?.boundBuffers());
    for (const c of this.all()) for (const b of c.prog.boundBuffers()) bound.add(b);
    return bound;
  }
}
