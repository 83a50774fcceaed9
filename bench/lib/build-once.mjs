// The benchmark's data cache: each input is built once, under a temporary sibling name renamed into place
// when complete, so an interrupted build is redone rather than half used.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';

/** Runs `fn(tmp)` to build `out` under a temporary sibling name, renamed into place when done. */
export function buildOnce(out, fn) {
  if (existsSync(out)) return out;
  const tmp = `${out}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  fn(tmp);
  renameSync(tmp, out);
  return out;
}
