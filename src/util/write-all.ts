/** writeSync until every byte is written: a short write (a signal, a pipe) is not an error. */
import { writeSync } from 'node:fs';

export function writeAllSync(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
}
