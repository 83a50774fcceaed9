/**
 * Packing and unpacking the `.dimg` tar. Packing hashes every member first so the header,
 * written first, can list them all; unpacking checks the header's version before anything
 * else and each member's size and sha256 as it streams by, so a damaged, truncated or
 * newer file is refused with one line before any of it is used.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { sha256File } from '../tree/scan.js';
import { streamingTo, writeFileAtomically } from '../util/atomic-output.js';
import { DeltaimgError, ioError, isDeltaimgError } from '../util/errors.js';
import { hashingTap } from '../util/hashing.js';
import { DIMG_HEADER, DIMG_HEADER_MAX_BYTES, MEMBER_NAME, type DimgHeader, type DimgMember } from './format.js';
import { damaged, decodeDimgHeader } from './header.js';

/** A member to pack: its name in the archive and the file holding its bytes. */
export interface MemberFile {
  name: string;
  path: string;
}

/** A fixed mtime keeps two runs over the same inputs byte-identical. */
const EPOCH = new Date(0);

/**
 * Writes the `.dimg` at `out` (a temp name beside it, renamed when complete) or to stdout
 * for '-'. Returns the header as written, members filled in, and the file's size.
 */
export async function packDimg(
  header: Omit<DimgHeader, 'members'>,
  files: MemberFile[],
  out: string,
): Promise<{ header: DimgHeader; bytes: number }> {
  const members: DimgMember[] = [];
  for (const f of files) {
    const { size } = await stat(f.path);
    members.push({ name: f.name, size, sha256: await sha256File(f.path) });
  }
  const full: DimgHeader = { ...header, members };
  const pack = tar.pack();
  const feeding = feedPack(pack, full, files);
  const counted = hashingTap();
  if (out === '-') {
    const streamed = streamingTo('standard output');
    try {
      await Promise.all([feeding, pipeline(pack, counted.stream, process.stdout, { end: false })]);
    } catch (err) {
      // A reader that went away (EPIPE) is the user's doing: one line, not a stack.
      throw isDeltaimgError(err) ? err : ioError('write', 'standard output', err);
    } finally {
      streamed();
    }
    return { header: full, bytes: counted.bytes() };
  }
  await writeFileAtomically(resolve(out), async (temp) => {
    try {
      await Promise.all([feeding, pipeline(pack, counted.stream, createWriteStream(temp, { flags: 'wx' }))]);
    } catch (err) {
      throw isDeltaimgError(err) ? err : ioError('write', out, err);
    }
  });
  return { header: full, bytes: counted.bytes() };
}

async function feedPack(pack: tar.Pack, header: DimgHeader, files: MemberFile[]): Promise<void> {
  try {
    await addEntry(pack, DIMG_HEADER, Buffer.from(JSON.stringify(header, null, 1) + '\n'));
    for (const f of files) {
      const { size } = await stat(f.path);
      const sink = pack.entry({ name: f.name, size, mode: 0o644, mtime: EPOCH, uid: 0, gid: 0 });
      await pipeline(createReadStream(f.path), sink);
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    throw err;
  }
}

function addEntry(pack: tar.Pack, name: string, data: Buffer): Promise<void> {
  return new Promise((res, rej) => {
    pack.entry({ name, size: data.length, mode: 0o644, mtime: EPOCH, uid: 0, gid: 0 }, data, (err) => (err ? rej(err) : res()));
  });
}

/** Reads only the header: enough for `image inspect` and for refusing a wrong base early. */
export async function readDimgHeader(path: string): Promise<DimgHeader> {
  let header: DimgHeader | undefined;
  await walkDimg(path, async (h) => {
    header = h;
    return 'stop';
  });
  return header!;
}

/**
 * Unpacks every member into `destDir` (which must exist and be empty), verifying each
 * against the header. Returns the header.
 */
export async function unpackDimg(path: string, destDir: string): Promise<DimgHeader> {
  let header: DimgHeader | undefined;
  const seen = new Set<string>();
  await walkDimg(path, async (h, name, entry) => {
    header = h;
    if (name === undefined || entry === undefined) return 'continue';
    const member = memberOf(h, name, path, seen);
    const file = join(destDir, ...member.name.split('/'));
    await mkdir(dirname(file), { recursive: true });
    const tap = hashingTap();
    await pipeline(entry(), tap.stream, createWriteStream(file, { flags: 'wx' }));
    if (tap.bytes() !== member.size || tap.sha256Hex() !== member.sha256) {
      throw damaged(path, `member ${member.name} does not match its recorded sha256`);
    }
    return 'continue';
  });
  const missing = header!.members.filter((m) => !seen.has(m.name));
  if (missing.length) throw damaged(path, `it ends before member ${missing[0]!.name} (truncated)`);
  return header!;
}

function memberOf(h: DimgHeader, name: string, path: string, seen: Set<string>): DimgMember {
  const member = h.members.find((m) => m.name === name);
  if (!member || !MEMBER_NAME.test(name) || name.split('/').includes('..')) {
    throw damaged(path, `unexpected member ${JSON.stringify(name)}`);
  }
  if (seen.has(name)) throw damaged(path, `member ${name} appears twice`);
  seen.add(name);
  return member;
}

/** `entry()` gives the member's stream, to be read at once (no await between the call and the read). */
type Visit = (header: DimgHeader, name?: string, entry?: () => NodeJS.ReadableStream) => Promise<'continue' | 'stop'>;

/** Streams the tar, parsing the header member first and handing each later member to `visit`. */
async function walkDimg(path: string, visit: Visit): Promise<void> {
  const input = path === '-' ? process.stdin : createReadStream(path);
  const extract = tar.extract();
  input.on('error', (err: Error) => extract.destroy(err));
  // A tar that ends inside a member fails the extractor, which destroys that member's stream;
  // a pipeline attached to it only afterwards (after an await) would never settle. Members are
  // handed out through `opened`, which throws the failure instead.
  let failure: Error | undefined;
  extract.on('error', (err: Error) => (failure ??= err));
  input.pipe(extract);
  let header: DimgHeader | undefined;
  try {
    for await (const entry of extract) {
      const name = entry.header.name;
      if (header === undefined) {
        header = await readHeaderEntry(path, name, entry);
        if ((await visit(header)) === 'stop') break;
        continue;
      }
      if (entry.header.type !== 'file') throw damaged(path, `member ${JSON.stringify(name)} is not a regular file`);
      const opened = (): NodeJS.ReadableStream => {
        if (failure) throw failure;
        return entry as unknown as NodeJS.ReadableStream;
      };
      if ((await visit(header, name, opened)) === 'stop') break;
    }
  } catch (err) {
    if (isDeltaimgError(err)) throw err;
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw ioError('read', path, err);
    throw damaged(path, `it is not a readable tar (${(err as Error).message}); truncated or damaged`);
  } finally {
    if (path === '-') input.unpipe(extract);
    else (input as Readable).destroy();
  }
  if (header === undefined) throw damaged(path, 'it is empty');
}

type TarEntry = AsyncIterable<unknown> & { header: { type?: string | null; size?: number } };

async function readHeaderEntry(path: string, name: string, entry: TarEntry): Promise<DimgHeader> {
  if (name !== DIMG_HEADER || entry.header.type !== 'file') {
    throw new DeltaimgError(
      'CORRUPT_DELTA',
      `${path} is not a deltaimg image delta (its first member is ${JSON.stringify(name.slice(0, 200))}, not ${DIMG_HEADER}); make one with 'deltaimg image diff'`,
    );
  }
  const size = entry.header.size ?? 0;
  if (size > DIMG_HEADER_MAX_BYTES)
    throw damaged(path, `its ${DIMG_HEADER} has ${size} bytes, more than a header can (${DIMG_HEADER_MAX_BYTES})`);
  const chunks: Buffer[] = [];
  for await (const c of entry) chunks.push(c as Buffer);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw damaged(path, `its ${DIMG_HEADER} is not valid JSON`);
  }
  return decodeDimgHeader(path, json);
}

export { damaged } from './header.js';
