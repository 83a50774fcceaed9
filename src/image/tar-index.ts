/**
 * Random access into an archive file without extracting it: one pass over the tar headers
 * (seeking past the data) records each member's data offset and size; members are then read
 * as byte ranges. Hostile or damaged archives fail here, naming the archive and the entry:
 * names escaping the root, duplicated names, links leading outside, truncation, bad headers.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { DeltaimgError, ioError } from '../util/errors.js';
import { safeMemberName } from './names.js';

const BLOCK = 512;
/** PAX and GNU long-name records are metadata, never this big in a sane archive. */
const MAX_META_BYTES = 1 << 20;
/** Symlinks to symlinks (docker save links duplicate layers once). */
const MAX_LINK_HOPS = 8;

export type MemberType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface TarMember {
  name: string;
  type: MemberType;
  /** Byte offset of the member's data in the archive file. */
  offset: number;
  size: number;
  linkname?: string;
}

export class TarIndex {
  constructor(
    readonly path: string,
    private readonly members: Map<string, TarMember>,
    /** How messages name the archive (a spooled stdin is "-", not its temp file). */
    readonly label: string = path,
  ) {}

  names(): string[] {
    return [...this.members.keys()];
  }

  /** The regular file a name leads to, following links inside the archive; undefined when absent. */
  file(name: string): TarMember | undefined {
    let member = this.members.get(name);
    for (let hops = 0; member && (member.type === 'symlink' || member.type === 'hardlink'); hops++) {
      if (hops >= MAX_LINK_HOPS) throw this.bad(name, 'too many levels of links');
      member = this.members.get(this.linkTarget(member));
    }
    if (member && member.type !== 'file') throw this.bad(name, `is a ${member.type}, not a regular file`);
    return member;
  }

  /** The member's data as a stream of exactly `size` bytes. */
  openRange(member: TarMember): Readable {
    if (member.size === 0) return Readable.from([]);
    return createReadStream(this.path, { start: member.offset, end: member.offset + member.size - 1 });
  }

  private linkTarget(member: TarMember): string {
    const link = member.linkname ?? '';
    // Hardlink names are archive paths; symlink targets are relative to the link's directory.
    const joined = member.type === 'hardlink' ? link : posix.join(posix.dirname(member.name), link);
    if (link.startsWith('/') || posix.normalize(joined).startsWith('..')) {
      throw new DeltaimgError('HOSTILE_PATH', `archive ${this.label}: entry ${member.name} links outside the archive (${link}); refusing it`);
    }
    return safeMemberName(this.label, posix.normalize(joined));
  }

  private bad(name: string, why: string): DeltaimgError {
    return new DeltaimgError('BAD_IMAGE', `archive ${this.label}: entry ${name} ${why}`);
  }
}

/** `label` names the archive in messages (default: its path). */
export async function indexTar(path: string, label: string = path): Promise<TarIndex> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw ioError('open', path, err);
  }
  try {
    return new TarIndex(path, await readMembers(fh, label, (await fh.stat()).size), label);
  } finally {
    await fh.close();
  }
}

interface PendingMeta {
  path?: string;
  linkpath?: string;
  size?: number;
}

async function readMembers(fh: FileHandle, archive: string, fileSize: number): Promise<Map<string, TarMember>> {
  const members = new Map<string, TarMember>();
  const header = Buffer.alloc(BLOCK);
  let pos = 0;
  let meta: PendingMeta = {};
  for (;;) {
    if (pos + BLOCK > fileSize) throw truncated(archive, pos === 0 ? 'is empty or not a tar archive' : `ends without an end-of-archive block (truncated at byte ${fileSize})`);
    await readFully(fh, header, pos, archive);
    if (header.every((b) => b === 0)) return members;
    const h = parseHeader(header, archive, pos);
    const size = meta.size ?? h.size;
    const dataStart = pos + BLOCK;
    if (dataStart + size > fileSize) throw truncated(archive, `entry ${meta.path ?? h.name} is cut short (truncated archive)`);
    pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (h.typeflag === 'x' || h.typeflag === 'L' || h.typeflag === 'K') {
      const data = await readMeta(fh, dataStart, size, archive, h.name);
      if (h.typeflag === 'x') meta = { ...meta, ...parsePax(data, archive, h.name) };
      else if (h.typeflag === 'L') meta.path = cString(data);
      else meta.linkpath = cString(data);
      continue;
    }
    if (h.typeflag === 'g') continue; // global PAX header: nothing we use
    const rawName = meta.path ?? h.name;
    const member: TarMember = { name: safeMemberName(archive, rawName), type: memberType(h.typeflag), offset: dataStart, size };
    const linkname = meta.linkpath ?? h.linkname;
    if (member.type === 'symlink' || member.type === 'hardlink') member.linkname = linkname;
    meta = {};
    if (member.name === '') continue; // "./" itself
    if (members.has(member.name)) {
      throw new DeltaimgError('BAD_IMAGE', `archive ${archive}: entry ${member.name} appears twice; refusing an ambiguous archive`);
    }
    members.set(member.name, member);
  }
}

interface RawHeader {
  name: string;
  size: number;
  typeflag: string;
  linkname: string;
}

function parseHeader(b: Buffer, archive: string, pos: number): RawHeader {
  const stored = parseOctal(b.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  if (stored !== sum) throw new DeltaimgError('BAD_IMAGE', `archive ${archive} is not a tar archive or is damaged (bad header checksum at byte ${pos})`);
  const name = cString(b.subarray(0, 100));
  // POSIX ustar ("ustar\0") splits long names into prefix + name; GNU ("ustar  ") uses that space for times.
  const posixUstar = b.toString('latin1', 257, 263) === 'ustar\0';
  const prefix = posixUstar ? cString(b.subarray(345, 500)) : '';
  return {
    name: prefix ? `${prefix}/${name}` : name,
    size: parseSize(b.subarray(124, 136)),
    typeflag: String.fromCharCode(b[156] || 0x30),
    linkname: cString(b.subarray(157, 257)),
  };
}

function memberType(typeflag: string): MemberType {
  switch (typeflag) {
    case '0':
    case '7':
      return 'file';
    case '5':
      return 'directory';
    case '2':
      return 'symlink';
    case '1':
      return 'hardlink';
    default:
      return 'other';
  }
}

/** Octal, or base-256 (high bit set) for sizes over 8 GiB. */
function parseSize(field: Buffer): number {
  if (field[0]! & 0x80) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  return parseOctal(field);
}

function parseOctal(field: Buffer): number {
  const text = cString(field).trim();
  return text ? parseInt(text, 8) : 0;
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.toString('utf8', 0, end < 0 ? b.length : end);
}

/** PAX records "LEN key=value\n": the ones that change a member's name, link or size. */
function parsePax(data: Buffer, archive: string, entry: string): PendingMeta {
  const out: PendingMeta = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const len = space > at ? parseInt(data.toString('latin1', at, space), 10) : NaN;
    if (!Number.isFinite(len) || len <= 0 || at + len > data.length) {
      throw new DeltaimgError('BAD_IMAGE', `archive ${archive}: malformed PAX header for entry ${entry}`);
    }
    const record = data.toString('utf8', space + 1, at + len - 1);
    const eq = record.indexOf('=');
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === 'path') out.path = value;
    else if (key === 'linkpath') out.linkpath = value;
    else if (key === 'size') out.size = Number(value);
    at += len;
  }
  return out;
}

async function readMeta(fh: FileHandle, offset: number, size: number, archive: string, entry: string): Promise<Buffer> {
  if (size > MAX_META_BYTES) throw new DeltaimgError('BAD_IMAGE', `archive ${archive}: metadata record for entry ${entry} is ${size} bytes; refusing it`);
  const data = Buffer.alloc(size);
  await readFully(fh, data, offset, archive);
  return data;
}

async function readFully(fh: FileHandle, buf: Buffer, position: number, archive: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    let n: number;
    try {
      n = (await fh.read(buf, done, buf.length - done, position + done)).bytesRead;
    } catch (err) {
      throw ioError('read', archive, err);
    }
    if (n === 0) throw truncated(archive, `ends at byte ${position + done} (truncated archive)`);
    done += n;
  }
}

function truncated(archive: string, why: string): DeltaimgError {
  return new DeltaimgError('BAD_IMAGE', `archive ${archive} ${why}`);
}
