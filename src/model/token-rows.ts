// The rows of the text tower's token embedding table that prompts use, read on the host as needed
// and kept (the table, 256000 x 1152 at the real size, never goes to the GPU; see text-model.ts).
import { toFloat32 } from '../core/dtype.js';
import { DTYPE_BYTES, type TensorSource } from '../core/tensor-source.js';
import { TOKEN_EMBEDDING } from './text.js';

export class TokenRows {
  /** Host rows of the token embedding table already read, by id. */
  private readonly rows = new Map<number, Float32Array>();
  /** The whole table, when the source cannot read ranges. */
  private table?: Float32Array;

  /** C: the hidden size, the width of a row. */
  constructor(
    private readonly C: number,
    private readonly allowNonFinite: boolean,
  ) {}

  /** token_embedding.weight[ids] + nothing else: [T, L, C] f32 on the host, rows read as needed (and checked finite). */
  async gather(src: TensorSource, ids: Int32Array): Promise<Float32Array> {
    const info = src.info(TOKEN_EMBEDDING)!;
    const C = this.C;
    const rowBytes = C * DTYPE_BYTES[info.dtype];
    const where = `${src.label}: tensor '${TOKEN_EMBEDDING}'`;
    const missing = [...new Set(ids)].filter((id) => !this.rows.has(id));
    if (missing.length > 0) {
      if (!src.readRange && !this.table) this.table = toFloat32(await src.read(TOKEN_EMBEDDING), info.dtype, where).slice();
      const readRow = async (id: number): Promise<Float32Array> =>
        this.table ? this.table.slice(id * C, (id + 1) * C) : toFloat32(await src.readRange!(TOKEN_EMBEDDING, id * rowBytes, rowBytes), info.dtype, where).slice();
      // Up to 64 row reads in flight at a time.
      for (let i = 0; i < missing.length; i += 64) {
        const ids = missing.slice(i, i + 64);
        const rows = await Promise.all(ids.map(readRow));
        ids.forEach((id, j) => {
          const row = rows[j];
          if (!this.allowNonFinite) {
            const bad = row.findIndex((v) => !Number.isFinite(v));
            if (bad >= 0) throw new Error(`${where} has a non-finite value (${row[bad]} at index ${id * C + bad}, row ${id})`);
          }
          this.rows.set(id, row);
        });
      }
    }
    const out = new Float32Array(ids.length * C);
    for (let i = 0; i < ids.length; i++) out.set(this.rows.get(ids[i])!, i * C);
    return out;
  }

  /** Forgets every row read (at dispose). */
  clear(): void {
    this.rows.clear();
    this.table = undefined;
  }
}
