/**
 * Opening a file that must be a regular file, for reading, without ever blocking.
 *
 * A plain open() of a FIFO for reading waits for a writer, forever: a wrong base, a delta or
 * a .dimg with a FIFO where a file belongs would hang the process, and with the wait inside a
 * libuv thread not even SIGTERM could end it. O_NONBLOCK makes that open return at once (on a
 * regular file it changes nothing); fstat on the descriptor then decides, so the check and
 * the read are about the same inode.
 */
import { closeSync, constants as fsc, fstatSync, openSync, type PathLike } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

export interface OpenOptions {
  /** Refuse a symlink as the last component (O_NOFOLLOW): for paths that name a file of a tree. */
  noFollow?: boolean;
}

function readFlags(opts: OpenOptions): number {
  return fsc.O_RDONLY | fsc.O_NONBLOCK | (opts.noFollow ? fsc.O_NOFOLLOW : 0);
}

/** The error a non-regular file gives: Node-shaped, code EINVAL, as callers map fs errors by code. */
export function notRegularFile(path: PathLike): NodeJS.ErrnoException {
  return Object.assign(new Error(`not a regular file: ${String(path)}`), { code: 'EINVAL', path: String(path) });
}

/** A descriptor and size of the regular file at `path`; throws (EINVAL) for anything else, closing what it opened. */
export function openRegularSync(path: PathLike, opts: OpenOptions = {}): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, readFlags(opts));
  } catch (err) {
    // A socket cannot be opened at all (ENXIO): it is just as much "not a regular file".
    if ((err as NodeJS.ErrnoException).code === 'ENXIO') throw notRegularFile(path);
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notRegularFile(path);
    return { fd, size: st.size };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** openRegularSync, asynchronously: a FileHandle on the regular file at `path`. */
export async function openRegular(path: PathLike, opts: OpenOptions = {}): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, readFlags(opts));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENXIO') throw notRegularFile(path);
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegularFile(path);
    return { fh, size: st.size };
  } catch (err) {
    await fh.close();
    throw err;
  }
}
