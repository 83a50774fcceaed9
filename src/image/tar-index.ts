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
import {
  BLOCK,
  checksumMatches,
  isHeaderOnlyType,
  isMetaType,
  isRegularType,
  isZeroBlock,
  longNameValue,
  nameAsText,
  parseHeader,
  parsePax,
  sparseExtensionContinues,
  type RawHeader,
} from '../tar/header.js';
import { safeMemberName } from './names.js';

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
      throw new DeltaimgError(
        'HOSTILE_PATH',
        `archive ${this.label}: entry ${member.name} links outside the archive (${link}); refusing it`,
      );
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
    if (pos + BLOCK > fileSize)
      throw truncated(
        archive,
        pos === 0 ? 'is empty or not a tar archive' : `ends without an end-of-archive block (truncated at byte ${fileSize})`,
      );
    await readFully(fh, header, pos, archive);
    if (isZeroBlock(header)) return members;
    const h = readHeader(header, archive, pos);
    const name = nameAsText(h.name);
    // A pax size is for the next member proper, not for another meta header before it.
    const metaType = isMetaType(h.typeflag);
    const size = metaType ? h.size : (meta.size ?? h.size);
    let dataStart = pos + BLOCK;
    if (h.gnuSparseExtended) dataStart = await skipSparseExtensions(fh, dataStart, fileSize, archive);
    if (dataStart + size > fileSize) throw truncated(archive, `entry ${meta.path ?? name} is cut short (truncated archive)`);
    pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (h.typeflag === 'x' || h.typeflag === 'X' || h.typeflag === 'L' || h.typeflag === 'K') {
      const data = await readMeta(fh, dataStart, size, archive, name);
      if (h.typeflag === 'x' || h.typeflag === 'X') meta = { ...meta, ...paxMeta(data, archive, name) };
      else if (h.typeflag === 'L') meta.path = nameAsText(longNameValue(data));
      else meta.linkpath = nameAsText(longNameValue(data));
      continue;
    }
    if (h.typeflag === 'g') continue; // global PAX header: nothing we use
    const rawName = meta.path ?? name;
    const member: TarMember = { name: safeMemberName(archive, rawName), type: memberType(h.typeflag), offset: dataStart, size };
    const linkname = meta.linkpath ?? nameAsText(h.linkname);
    if (member.type === 'symlink' || member.type === 'hardlink') member.linkname = linkname;
    meta = {};
    if (member.name === '') continue; // "./" itself
    if (members.has(member.name)) {
      throw new DeltaimgError('BAD_IMAGE', `archive ${archive}: entry ${member.name} appears twice; refusing an ambiguous archive`);
    }
    members.set(member.name, member);
  }
}

/** A header block through the one tar codec; a damaged or foreign block is refused here. */
function readHeader(b: Buffer, archive: string, pos: number): RawHeader & { size: number } {
  if (!checksumMatches(b))
    throw new DeltaimgError('BAD_IMAGE', `archive ${archive} is not a tar archive or is damaged (bad header checksum at byte ${pos})`);
  const h = parseHeader(b);
  if (h.size === undefined)
    throw new DeltaimgError('BAD_IMAGE', `archive ${archive} is damaged (unreadable size field in the header at byte ${pos})`);
  return { ...h, size: isHeaderOnlyType(h.typeflag) ? 0 : h.size };
}

/** Old GNU sparse members: extension blocks of the sparse map, chained by a flag, before the data. */
async function skipSparseExtensions(fh: FileHandle, at: number, fileSize: number, archive: string): Promise<number> {
  const block = Buffer.alloc(BLOCK);
  for (let pos = at; ; pos += BLOCK) {
    if (pos + BLOCK > fileSize) throw truncated(archive, `ends inside a sparse map (truncated at byte ${fileSize})`);
    await readFully(fh, block, pos, archive);
    if (!sparseExtensionContinues(block)) return pos + BLOCK;
  }
}

function memberType(typeflag: string): MemberType {
  if (isRegularType(typeflag)) return 'file';
  switch (typeflag) {
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

/** PAX records: the ones that change a member's name, link or size; names decoded as UTF-8. */
function paxMeta(data: Buffer, archive: string, entry: string): PendingMeta {
  const pax = parsePax(data);
  if (!pax.ok) throw new DeltaimgError('BAD_IMAGE', `archive ${archive}: malformed PAX header for entry ${entry} (${pax.why})`);
  const out: PendingMeta = {};
  if (pax.path !== undefined) out.path = nameAsText(pax.path);
  if (pax.linkpath !== undefined) out.linkpath = nameAsText(pax.linkpath);
  if (pax.size !== undefined) out.size = pax.size;
  return out;
}

async function readMeta(fh: FileHandle, offset: number, size: number, archive: string, entry: string): Promise<Buffer> {
  if (size > MAX_META_BYTES)
    throw new DeltaimgError('BAD_IMAGE', `archive ${archive}: metadata record for entry ${entry} is ${size} bytes; refusing it`);
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
