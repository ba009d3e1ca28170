// The profiler's table: per kernel, calls, total and mean GPU time, achieved GFLOP/s or GB/s,
// and the share of the adapter's peak when a peak figure is known.
import type { DispatchTiming } from './program.js';

export interface KernelRow {
  kernel: string;
  calls: number;
  totalMs: number;
  meanMs: number;
  gflops?: number;
  gbps?: number;
  /** % of the given peak (GFLOP/s for arithmetic kernels). */
  peakPct?: number;
}

export interface Peak {
  gflops: number;
  /** Where the figure comes from (printed under the table). */
  source: string;
}

export function summarize(timings: DispatchTiming[], peak?: Peak): KernelRow[] {
  const byKernel = new Map<string, { calls: number; ms: number; flops: number; bytes: number }>();
  for (const t of timings) {
    const r = byKernel.get(t.kernel) ?? { calls: 0, ms: 0, flops: 0, bytes: 0 };
    r.calls++;
    r.ms += t.ms;
    r.flops += t.cost.flops ?? 0;
    r.bytes += t.cost.bytes ?? 0;
    byKernel.set(t.kernel, r);
  }
  return [...byKernel.entries()]
    .map(([kernel, r]) => {
      const gflops = r.flops && r.ms > 0 ? r.flops / r.ms / 1e6 : undefined;
      return {
        kernel,
        calls: r.calls,
        totalMs: r.ms,
        meanMs: r.ms / r.calls,
        gflops,
        gbps: !r.flops && r.bytes && r.ms > 0 ? r.bytes / r.ms / 1e6 : undefined,
        peakPct: gflops !== undefined && peak ? (100 * gflops) / peak.gflops : undefined,
      };
    })
    .sort((a, b) => b.totalMs - a.totalMs);
}

export function formatTable(rows: KernelRow[], peak?: Peak): string {
  const total = rows.reduce((s, r) => s + r.totalMs, 0);
  const head = ['kernel', 'calls', 'total ms', '%', 'mean ms', 'GFLOP/s', 'GB/s', '% peak'];
  const body = rows.map((r) => [
    r.kernel,
    String(r.calls),
    r.totalMs.toFixed(2),
    ((100 * r.totalMs) / (total || 1)).toFixed(1),
    r.meanMs.toFixed(3),
    r.gflops?.toFixed(2) ?? '',
    r.gbps?.toFixed(2) ?? '',
    r.peakPct?.toFixed(1) ?? '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line), `total ${total.toFixed(2)} ms`];
  if (peak) out.push(`% peak: of ${peak.gflops.toFixed(1)} GFLOP/s (${peak.source})`);
  return out.join('\n');
}
