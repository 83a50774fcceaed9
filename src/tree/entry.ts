/**
 * The model of a root filesystem: one Entry per path, a discriminated union on `kind`.
 *
 * Paths are RelPath: the raw bytes of a path relative to the root, with no leading
 * slash, components joined by '/', held in a JS string one char per byte ('latin1').
 * This keeps non-UTF-8 names exact, sorts in byte order with plain string comparison,
 * and converts to a Buffer for fs calls with Buffer.from(p, 'latin1') (see paths.ts).
 */
export type RelPath = string & { readonly __relPath: unique symbol };

export interface Xattr {
  readonly name: string;
  readonly value: Buffer;
}

export interface Metadata {
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Modification time, nanoseconds since the epoch. */
  readonly mtimeNs: bigint;
  /** Extended attributes sorted by name; empty when there are none. */
  readonly xattrs: readonly Xattr[];
}

interface EntryBase {
  readonly path: RelPath;
  readonly meta: Metadata;
}

export interface FileEntry extends EntryBase {
  readonly kind: 'file';
  readonly size: number;
  /** Hex sha256 of the content; filled by the scanner when hashing is requested. */
  readonly sha256?: string;
}

export interface DirEntry extends EntryBase {
  readonly kind: 'dir';
}

export interface SymlinkEntry extends EntryBase {
  readonly kind: 'symlink';
  /** Raw bytes of the link target, latin1-held like RelPath. */
  readonly target: string;
}

/** A second (third, ...) name of a regular file; `linkTo` is the first name in path order. */
export interface HardlinkEntry extends EntryBase {
  readonly kind: 'hardlink';
  readonly linkTo: RelPath;
}

export interface DeviceEntry extends EntryBase {
  readonly kind: 'chardev' | 'blockdev';
  readonly major: number;
  readonly minor: number;
}

export interface FifoEntry extends EntryBase {
  readonly kind: 'fifo';
}

export type Entry = FileEntry | DirEntry | SymlinkEntry | HardlinkEntry | DeviceEntry | FifoEntry;
export type EntryKind = Entry['kind'];
