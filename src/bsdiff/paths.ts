/** Paths may be Buffers: file names in images are bytes, not necessarily UTF-8. */
export type PathLike = string | Buffer;

/** Printable form of a path that may hold non-UTF-8 bytes. */
export function showPath(path: PathLike): string {
  return typeof path === 'string' ? path : path.toString('latin1');
}
