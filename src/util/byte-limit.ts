/**
 * A pass-through that fails as soon as more than `maxBytes` would pass: decoders of outside
 * data (brotli, VCDIFF, bsdiff) stop at the size a record or header declared, instead of
 * writing whatever a hostile payload expands to before a digest check refuses it.
 */
import { Transform } from 'node:stream';

export function byteLimit(maxBytes: number, exceeded: () => Error): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > maxBytes) done(exceeded());
      else done(null, chunk);
    },
  });
}

/** How large a VCDIFF may be for a target of `targetBytes`: generous (a delta worse than the file itself is never chosen), but finite. */
export function vcdiffMaxBytes(targetBytes: number): number {
  return 2 * targetBytes + 1024 * 1024;
}
