/**
 * Hashing the regular files of a scan that the walk left unhashed. The walk (walk.ts) hashes
 * each file through its open directory on threadpool threads; it cannot where this node offers
 * native code no sha256 (OpenSSL's EVP, looked up at run time): then the files are hashed here,
 * synchronously through one shared buffer, with the same checks and the same errors.
 */
import { closeSync, fstatSync, openSync, readSync, constants as fsc } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Entry, FileEntry } from './entry.js';
import { displayPath, toFsPath } from './paths.js';
import { EventLoopYielder } from '../util/yield.js';
import { DeltaimgError, ioError } from '../util/errors.js';

const READ_BUFFER_BYTES = 256 * 1024;

/**
 * Fills `sha256` of every FileEntry of `entries` that has none (replacing the entry objects);
 * `onBytes` counts what was read. A file opens O_NOFOLLOW | O_NONBLOCK and must still be a
 * regular file of the scanned size: a FIFO put in its place never blocks.
 */
export async function hashFileEntries(root: Buffer, entries: Entry[], onBytes: (n: number) => void): Promise<void> {
  const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const yielder = new EventLoopYielder();
  for (let i = 0; i < entries.length; i++) {
    const file = entries[i]!;
    if (file.kind !== 'file' || file.sha256 !== undefined) continue;
    entries[i] = { ...file, sha256: hashOne(toFsPath(root, file.path), file, buffer, onBytes) };
    await yielder.maybe();
  }
}

export function notRegularError(file: FileEntry): Error {
  return ioError(
    'read',
    displayPath(file.path),
    Object.assign(new Error('no longer a regular file (it changed during the scan)'), { code: 'EINVAL' }),
  );
}

export function changedWhileReadingError(file: FileEntry): Error {
  return ioError(
    'read',
    displayPath(file.path),
    Object.assign(new Error('the file changed while deltaimg was reading it'), { code: 'EAGAIN' }),
  );
}

function hashOne(path: Buffer, file: FileEntry, buffer: Buffer, onBytes: (n: number) => void): string {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (err) {
    // ELOOP: a symlink put in its place; ENXIO: a socket.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENXIO') throw notRegularError(file);
    throw ioError('read', displayPath(file.path), err);
  }
  try {
    if (!fstatSync(fd).isFile()) throw notRegularError(file);
    const hash = createHash('sha256');
    let bytes = 0;
    for (let n = readSync(fd, buffer, 0, buffer.length, null); n > 0; n = readSync(fd, buffer, 0, buffer.length, null)) {
      hash.update(buffer.subarray(0, n));
      bytes += n;
      onBytes(n);
    }
    if (bytes !== file.size) throw changedWhileReadingError(file);
    return hash.digest('hex');
  } catch (err) {
    if (err instanceof DeltaimgError) throw err;
    throw ioError('read', displayPath(file.path), err);
  } finally {
    closeSync(fd);
  }
}
