/**
 * The sha256 of every regular file of a scan. A tree of 100k small files is mostly per-file
 * cost (open, read, close, a hash object): the fsext addon's hashFiles reads batches of files
 * on threadpool threads, several batches at once, so every core hashes and this thread only
 * hands out paths and takes back 48-byte rows. Without it (an addon from before hashFiles, a
 * node without OpenSSL's EVP) files are hashed here, synchronously, one shared buffer.
 */
import { closeSync, fstatSync, openSync, readSync, constants as fsc } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createHash } from 'node:crypto';
import { getSystemErrorName } from 'node:util';
import type { Entry, FileEntry } from './entry.js';
import { fsext } from './fsext.js';
import { displayPath, toFsPath } from './paths.js';
import { EventLoopYielder } from '../util/yield.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import { Fifo } from '../util/limiter.js';

/** A batch ends after this many files or bytes: small enough to spread over the cores, large enough to be cheap to hand out. */
const BATCH_FILES = 1024;
const BATCH_BYTES = 32 * 1024 * 1024;
/** Bytes per result row (native-build/fsext/hashfiles.c). */
const ROW_BYTES = 48;
const READ_BUFFER_BYTES = 256 * 1024;

/**
 * Fills `sha256` of every FileEntry of `entries` (replacing the entry objects); `onBytes` counts
 * what was read. `native: false` takes the fallback path (for tests: both must agree).
 */
export async function hashFileEntries(root: Buffer, entries: Entry[], onBytes: (n: number) => void, native = true): Promise<void> {
  const files: number[] = [];
  entries.forEach((e, i) => {
    if (e.kind === 'file') files.push(i);
  });
  if (files.length === 0) return;
  const ext = fsext();
  if (native && typeof ext.hashFiles === 'function' && (await nativeWorks(ext.hashFiles, root))) {
    await hashNatively(ext.hashFiles, root, entries, files, onBytes);
  } else {
    await hashHere(root, entries, files, onBytes);
  }
}

type HashFilesFn = (root: Buffer, paths: Buffer) => Promise<Buffer>;

/** False when the addon cannot hash here (no EVP in this node): it throws ENOSYS before any work. */
async function nativeWorks(hashFiles: HashFilesFn, root: Buffer): Promise<boolean> {
  try {
    await hashFiles(root, Buffer.alloc(0));
    return true;
  } catch {
    return false;
  }
}

async function hashNatively(
  hashFiles: HashFilesFn,
  root: Buffer,
  entries: Entry[],
  files: number[],
  onBytes: (n: number) => void,
): Promise<void> {
  const batches = new Fifo<number[]>();
  for (let at = 0; at < files.length;) {
    const batch: number[] = [];
    let bytes = 0;
    while (at < files.length && batch.length < BATCH_FILES && (batch.length === 0 || bytes < BATCH_BYTES)) {
      const i = files[at++]!;
      batch.push(i);
      bytes += (entries[i] as FileEntry).size;
    }
    batches.push(batch);
  }
  // Batches run on the threadpool (4 threads by default): one per core keeps them all busy,
  // leaving the pool room for the other tree's scan and for this process's other work.
  const worker = async (): Promise<void> => {
    for (let batch = batches.shift(); batch !== undefined; batch = batches.shift()) {
      const paths = Buffer.from(batch.map((i) => entries[i]!.path + '\0').join(''), 'latin1');
      const rows = await hashFiles(root, paths);
      batch.forEach((i, k) => {
        const file = entries[i] as FileEntry;
        entries[i] = { ...file, sha256: digestOfRow(file, rows.subarray(k * ROW_BYTES, (k + 1) * ROW_BYTES)) };
        onBytes(file.size);
      });
    }
  };
  const workers = Array.from({ length: Math.max(2, availableParallelism()) }, worker);
  // Every worker settles before the first failure is thrown: none is left reading into a scan that ended.
  const settled = await Promise.allSettled(workers);
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
}

/** Steps of a failed row (hashfiles.c). */
const STEP_OPEN = 1;
const STEP_NOT_REGULAR = 2;

function digestOfRow(file: FileEntry, row: Buffer): string {
  const step = row.readInt32LE(0);
  const errno = row.readInt32LE(4);
  const bytes = row.readDoubleLE(8);
  if (step === STEP_NOT_REGULAR) throw notRegular(file);
  if (step !== 0) {
    const code = errno > 0 ? getSystemErrorName(-errno) : 'EIO';
    const why = step === STEP_OPEN ? 'open failed' : 'read failed';
    throw ioError('read', displayPath(file.path), Object.assign(new Error(why), { code }));
  }
  if (bytes !== file.size) throw changedWhileReading(file);
  return row.toString('hex', 16, 48);
}

function notRegular(file: FileEntry): Error {
  return ioError(
    'read',
    displayPath(file.path),
    Object.assign(new Error('no longer a regular file (it changed during the scan)'), { code: 'EINVAL' }),
  );
}

function changedWhileReading(file: FileEntry): Error {
  return ioError(
    'read',
    displayPath(file.path),
    Object.assign(new Error('the file changed while deltaimg was reading it'), { code: 'EAGAIN' }),
  );
}

/** The fallback: synchronous reads into one buffer, the same checks, a turn of the event loop every few ms. */
async function hashHere(root: Buffer, entries: Entry[], files: number[], onBytes: (n: number) => void): Promise<void> {
  const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const yielder = new EventLoopYielder();
  for (const i of files) {
    const file = entries[i] as FileEntry;
    entries[i] = { ...file, sha256: hashOneHere(toFsPath(root, file.path), file, buffer, onBytes) };
    await yielder.maybe();
  }
}

function hashOneHere(path: Buffer, file: FileEntry, buffer: Buffer, onBytes: (n: number) => void): string {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENXIO') throw notRegular(file);
    throw ioError('read', displayPath(file.path), err);
  }
  try {
    if (!fstatSync(fd).isFile()) throw notRegular(file);
    const hash = createHash('sha256');
    let bytes = 0;
    for (let n = readSync(fd, buffer, 0, buffer.length, null); n > 0; n = readSync(fd, buffer, 0, buffer.length, null)) {
      hash.update(buffer.subarray(0, n));
      bytes += n;
      onBytes(n);
    }
    if (bytes !== file.size) throw changedWhileReading(file);
    return hash.digest('hex');
  } catch (err) {
    if (err instanceof DeltaimgError) throw err;
    throw ioError('read', displayPath(file.path), err);
  } finally {
    closeSync(fd);
  }
}
