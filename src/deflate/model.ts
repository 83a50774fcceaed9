/**
 * Rewrites the scanner's token bytes (scan.ts) for the recipe: each match's distance becomes its
 * rank code (window.ts) followed, only for RANK_ESCAPE, by the distance. Everything else is
 * copied. The scanner's output always ends on a whole item, so chunks are rewritten as they come.
 */
import { ByteReader, ByteWriter } from './bytes.js';
import { DeflateFormatError } from './tables.js';
import { RANK_ESCAPE, type Window, advanceTo } from './window.js';

type State = 'kind' | 'tokens' | 'end-pad';

export class RankCoder {
  private state: State = 'kind';
  private final = false;
  /** Absolute position in the decompressed bytes. */
  private pos = 0;

  constructor(private readonly win: Window) {}

  async rewrite(raw: Buffer, out: ByteWriter): Promise<void> {
    const r = new ByteReader(raw, (what) => new DeflateFormatError(`scanner tokens: ${what}`));
    while (r.remaining > 0) {
      if (this.state === 'end-pad') {
        out.varint(r.varint('padding'));
        this.state = 'kind';
        continue;
      }
      if (this.state === 'kind') {
        const kind = r.byte('block kind');
        out.byte(kind);
        this.final = (kind & 1) === 1;
        if (kind >> 1 === 0) {
          out.varint(r.varint('padding'));
          const len = r.varint('stored length');
          out.varint(len);
          this.pos += len;
          await advanceTo(this.win, this.pos);
          this.state = this.final ? 'end-pad' : 'kind';
          continue;
        }
        if (kind >> 1 === 2) {
          const bits = r.varint('header bits');
          out.varint(bits);
          out.raw(r.take((bits + 7) >> 3, 'header'));
        }
        this.state = 'tokens';
        continue;
      }
      const run = r.varint('literal run');
      out.varint(run);
      this.pos += run;
      const m = r.varint('match');
      out.varint(m);
      if (m === 0) {
        this.state = this.final ? 'end-pad' : 'kind';
        continue;
      }
      const length = m + 2;
      const distance = r.varint('distance') + 1;
      await advanceTo(this.win, this.pos);
      await this.win.ensure(this.pos + length, this.pos);
      const code = this.win.rankOf(this.pos, length, distance);
      out.varint(code);
      if (code === RANK_ESCAPE) out.varint(distance - 1);
      this.pos += length;
    }
  }
}
