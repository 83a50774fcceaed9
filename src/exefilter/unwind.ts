/**
 * Relabelling of the unwind tables (docs/format.md, "Address relabelling", `unwind`): the
 * `.eh_frame_hdr` search table (pairs of 32-bit offsets from the header to each function's start
 * and to its FDE) and the FDEs' own `pc_begin` (32-bit, relative to the field). Every function
 * that moved changes both, in C, C++ and Rust binaries alike; the word scan cannot see them (32-bit
 * offsets look like any number), so they are found through the header's own layout.
 *
 * Source side only, after the branch transform and word relabelling; it reads and writes the
 * file by position (a table and the FDEs it points to lie anywhere), entry by entry in table
 * order, so the in-memory and the file paths give the same bytes on any input.
 */
import { closeSync, openSync, readSync, writeSync, constants as fsc } from 'node:fs';
import { shiftAt, type AddressMap, type UnwindHeader } from './address-map.js';
import { transformBuffer, type BranchTransform } from './transform.js';

/** Positional access to the bytes being transformed. */
interface Bytes {
  size: number;
  read(offset: number, length: number): Buffer;
  write(offset: number, bytes: Buffer): void;
}

/** The only header layout relabelled: version 1, eh_frame_ptr pcrel sdata4, fde_count udata4, table datarel sdata4 (what GNU ld, gold and lld write). */
const HEADER_LAYOUT = [1, 0x1b, 0x03, 0x3b];
/** An FDE whose length field is this uses the 64-bit format: left alone. */
const EXTENDED_LENGTH = 0xffffffff;

/** A source's whole transform, in place: branches (and words) forward, then its unwind tables. */
export function transformSourceBuffer(t: BranchTransform, buf: Buffer): void {
  transformBuffer(t, 'forward', buf);
  if (t.addressMap?.unwind) relabelUnwindBuffer(t.addressMap, t.addressMap.unwind, buf);
}

/** Relabels, in place, the unwind tables of a source held in `buf`. */
export function relabelUnwindBuffer(map: AddressMap, header: UnwindHeader, buf: Buffer): void {
  relabelUnwind(map, header, {
    size: buf.length,
    read: (offset, length) => buf.subarray(offset, offset + length),
    write: (offset, bytes) => void bytes.copy(buf, offset),
  });
}

/** Relabels, in place, the unwind tables of the (transformed) source file at `path`. */
export function relabelUnwindFile(map: AddressMap, header: UnwindHeader, path: string | Buffer, size: number): void {
  const fd = openSync(path, fsc.O_RDWR | fsc.O_NOFOLLOW);
  try {
    relabelUnwind(map, header, {
      size,
      read: (offset, length) => {
        const out = Buffer.alloc(length);
        return out.subarray(0, readSync(fd, out, 0, length, offset));
      },
      write: (offset, bytes) => void writeSync(fd, bytes, 0, bytes.length, offset),
    });
  } finally {
    closeSync(fd);
  }
}

function relabelUnwind(map: AddressMap, h: UnwindHeader, bytes: Bytes): void {
  const head = bytes.size >= h.offset + 12 ? bytes.read(h.offset, 12) : undefined;
  if (!head || HEADER_LAYOUT.some((b, i) => head[i] !== b)) return;
  const count = Math.min(head.readUInt32LE(8), Math.floor((bytes.size - h.offset - 12) / 8));
  // A 32-bit offset `v` from `field` to an address: the same offset between the two things' target addresses.
  const relabel = (field: number, v: number) => (field + v + shiftAt(map, field + v) - (field + shiftAt(map, field))) | 0;
  for (let i = 0; i < count; i++) {
    const at = h.offset + 12 + 8 * i;
    const entry = bytes.read(at, 8);
    const start = entry.readInt32LE(0);
    const fde = entry.readInt32LE(4);
    entry.writeInt32LE(relabel(h.vaddr, start), 0);
    entry.writeInt32LE(relabel(h.vaddr, fde), 4);
    bytes.write(at, entry);
    // The FDE, at the same distance from the header in the file as in memory (one segment).
    const fdeAt = h.offset + fde;
    if (fdeAt < 0 || fdeAt + 12 > bytes.size) continue;
    const record = bytes.read(fdeAt, 12);
    if (record.readUInt32LE(0) === EXTENDED_LENGTH || record.readUInt32LE(4) === 0) continue; // not a 32-bit FDE (a CIE's id is 0)
    record.writeInt32LE(relabel(h.vaddr + fde + 8, record.readInt32LE(8)), 8);
    bytes.write(fdeAt + 8, record.subarray(8, 12));
  }
}
