// Progress for long steps: a redrawn bar with ETA on a terminal, plain lines otherwise,
// nothing with --quiet. Always on stderr, so stdout stays clean for data.
export class Progress {
  private readonly start = performance.now();
  private lastLine = 0;
  private lastPct = -1;

  constructor(
    private readonly what: string,
    /** May be 0 until the first update() that knows it. */
    private total: number,
    private readonly quiet = false,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly unit = '',
  ) {}

  update(done: number, detail = '', total = this.total): void {
    this.total = total;
    if (this.quiet || this.total <= 0) return;
    const frac = Math.min(1, done / this.total);
    const elapsed = (performance.now() - this.start) / 1000;
    const eta = frac > 0 && frac < 1 ? ` ETA ${formatSeconds((elapsed / frac) * (1 - frac))}` : '';
    const count = this.unit ? `${formatCount(done, this.unit)}/${formatCount(this.total, this.unit)}` : `${done}/${this.total}`;
    if (this.stream.isTTY) {
      const now = performance.now();
      if (frac < 1 && now - this.lastLine < 100) return;
      this.lastLine = now;
      const width = 24;
      const filled = Math.round(frac * width);
      this.stream.write(`\r${this.what} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${count}${eta} ${detail}`.padEnd(this.stream.columns ? this.stream.columns - 1 : 0));
      if (frac >= 1) this.stream.write('\n');
    } else {
      const pct = Math.floor(frac * 10) * 10;
      if (pct === this.lastPct) return;
      this.lastPct = pct;
      this.stream.write(`${this.what}: ${pct}% (${count})${eta}${detail ? ` ${detail}` : ''}\n`);
    }
  }
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${Math.round(s - 60 * m)
    .toString()
    .padStart(2, '0')}s`;
}

function formatCount(n: number, unit: string): string {
  if (unit === 'B') return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`;
  return `${n}${unit}`;
}
