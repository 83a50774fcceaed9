/**
 * Finds the code of a 64-bit little-endian ELF file (x86-64 or AArch64): its executable
 * sections, or, without a section table, its executable PT_LOAD segments. Everything read
 * is checked against the file's size; anything unexpected (another class, byte order or
 * machine, a table or region outside the file, overlapping regions) means "not an
 * executable we transform", never an error: the file is then diffed as plain bytes.
 */
import { closeSync, openSync, readSync, constants as fsc } from 'node:fs';
import type { LoadSegment, UnwindHeader } from './address-map.js';
import type { Arch, Region } from './transform.js';

export interface ElfCode {
  arch: Arch;
  /** The file's size. */
  fileSize: number;
  /** Sorted by offset, non-overlapping, each inside the file, at most MAX_REGIONS. */
  regions: Region[];
  /** The PT_LOAD segments whose file bytes lie inside the file (for address relabelling; may be empty). */
  loads: LoadSegment[];
  /** Its PT_GNU_EH_FRAME (`.eh_frame_hdr`), when that lies inside the file. */
  unwind?: UnwindHeader;
}

/** More code regions than this: the largest are kept (a normal executable has a handful). */
export const MAX_REGIONS = 64;
/** Section or program header tables longer than this are not read. */
const MAX_TABLE_ENTRIES = 4096;

const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const SHT_PROGBITS = 1;
const SHF_ALLOC = 0x2;
const SHF_EXECINSTR = 0x4;
const PT_LOAD = 1;
const PF_X = 0x1;
const PT_GNU_EH_FRAME = 0x6474e550;

/** Reads `length` bytes at `offset`; fewer only at the end of the file. */
export type ReadAt = (offset: number, length: number) => Buffer;

/** The code regions of the ELF file at `path`, or undefined when it is not one we transform. */
export function readElfCode(path: string | Buffer, size: number): ElfCode | undefined {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    return parseElfCode((offset, length) => {
      const buf = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, buf, got, length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    }, size);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

export function parseElfCode(read: ReadAt, size: number): ElfCode | undefined {
  if (size < 64) return undefined;
  const h = read(0, 64);
  if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46) return undefined;
  // ELFCLASS64, ELFDATA2LSB, EV_CURRENT.
  if (h[4] !== 2 || h[5] !== 1 || h[6] !== 1 || h.readUInt32LE(20) !== 1) return undefined;
  const machine = h.readUInt16LE(18);
  const arch: Arch | undefined = machine === EM_X86_64 ? 'x86-64' : machine === EM_AARCH64 ? 'arm64' : undefined;
  if (!arch) return undefined;
  const fromSections = sectionRegions(read, size, h);
  const segments = loadSegments(read, size, h);
  const regions = fromSections?.length ? fromSections : segments?.filter((s) => s.executable).map((s) => s.region);
  if (!regions?.length) return undefined;
  const kept = keepLargest(disjoint(regions) ?? []).filter((r) => arch !== 'arm64' || r.vaddr % 4 === 0);
  const loads = (segments ?? []).flatMap((s) => (s.load ? [s.load] : []));
  const unwind = unwindHeader(read, size, h);
  return kept.length ? { arch, fileSize: size, regions: kept, loads, ...(unwind ? { unwind } : {}) } : undefined;
}

/** A table of `count` entries of `entrySize` bytes at `offset`, wholly inside the file. */
function readTable(
  read: ReadAt,
  size: number,
  offset: number | undefined,
  count: number,
  entrySize: number,
  expectedEntrySize: number,
): Buffer | undefined {
  if (offset === undefined || count === 0 || count > MAX_TABLE_ENTRIES || entrySize !== expectedEntrySize) return undefined;
  if (offset + count * entrySize > size) return undefined;
  const table = read(offset, count * entrySize);
  return table.length === count * entrySize ? table : undefined;
}

function sectionRegions(read: ReadAt, size: number, h: Buffer): Region[] | undefined {
  const table = readTable(read, size, u64(h, 40), h.readUInt16LE(60), h.readUInt16LE(58), 64);
  if (!table) return undefined;
  const out: Region[] = [];
  for (let at = 0; at < table.length; at += 64) {
    const type = table.readUInt32LE(at + 4);
    const flags = u64(table, at + 8);
    if (type !== SHT_PROGBITS || flags === undefined || (flags & (SHF_ALLOC | SHF_EXECINSTR)) !== (SHF_ALLOC | SHF_EXECINSTR)) continue;
    const region = inFile(u64(table, at + 24), u64(table, at + 32), table.readUInt32LE(at + 16), size);
    if (region) out.push(region);
  }
  return disjoint(out);
}

interface Segment {
  executable: boolean;
  region: Region;
  /** Undefined when its addresses are not usable (above 2^53, or smaller in memory than in the file). */
  load?: LoadSegment;
}

/** The PT_LOAD segments with file bytes inside the file; undefined when the table is unreadable. */
function loadSegments(read: ReadAt, size: number, h: Buffer): Segment[] | undefined {
  const table = readTable(read, size, u64(h, 32), h.readUInt16LE(56), h.readUInt16LE(54), 56);
  if (!table) return undefined;
  const out: Segment[] = [];
  for (let at = 0; at < table.length; at += 56) {
    if (table.readUInt32LE(at) !== PT_LOAD) continue;
    const [offset, fileSize, vaddr, memSize] = [u64(table, at + 8), u64(table, at + 32), u64(table, at + 16), u64(table, at + 40)];
    const region = inFile(offset, fileSize, table.readUInt32LE(at + 16), size);
    if (!region) continue;
    const usable = vaddr !== undefined && memSize !== undefined && memSize >= region.size;
    out.push({
      executable: (table.readUInt32LE(at + 4) & PF_X) !== 0,
      region,
      ...(usable ? { load: { offset: region.offset, fileSize: region.size, vaddr, memSize } } : {}),
    });
  }
  return out;
}

function unwindHeader(read: ReadAt, size: number, h: Buffer): UnwindHeader | undefined {
  const table = readTable(read, size, u64(h, 32), h.readUInt16LE(56), h.readUInt16LE(54), 56);
  for (let at = 0; table && at < table.length; at += 56) {
    if (table.readUInt32LE(at) !== PT_GNU_EH_FRAME) continue;
    const [offset, vaddr] = [u64(table, at + 8), u64(table, at + 16)];
    return offset !== undefined && vaddr !== undefined && offset + 12 <= size ? { offset, vaddr } : undefined;
  }
  return undefined;
}

/** A region when it is non-empty and inside the file; `vaddrLow` is the address mod 2^32. */
function inFile(offset: number | undefined, length: number | undefined, vaddrLow: number, size: number): Region | undefined {
  if (offset === undefined || length === undefined || length === 0 || offset + length > size) return undefined;
  return { offset, size: length, vaddr: vaddrLow };
}

/** Sorted by offset; undefined when two overlap (a table we do not understand). */
function disjoint(regions: Region[]): Region[] | undefined {
  regions = [...regions];
  regions.sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < regions.length; i++) if (regions[i]!.offset < regions[i - 1]!.offset + regions[i - 1]!.size) return undefined;
  return regions;
}

function keepLargest(regions: Region[]): Region[] {
  if (regions.length <= MAX_REGIONS) return regions;
  return [...regions]
    .sort((a, b) => b.size - a.size || a.offset - b.offset)
    .slice(0, MAX_REGIONS)
    .sort((a, b) => a.offset - b.offset);
}

/** A 64-bit field as a number, undefined when above 2^53. */
function u64(buf: Buffer, at: number): number | undefined {
  const v = buf.readBigUInt64LE(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v);
}
