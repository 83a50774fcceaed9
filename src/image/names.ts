/**
 * Names of files inside an image archive or layout: relative, no `..`, no absolute paths.
 * Digests: only "sha256:<64 hex>" is accepted, so a digest can name a blob file safely.
 */
import { posix } from 'node:path';
import { DeltaimgError } from '../util/errors.js';

/** The member name normalized ("./a//b/" -> "a/b", "./" -> ""), or a HOSTILE_PATH error. */
export function safeMemberName(archive: string, raw: string): string {
  if (raw.startsWith('/') || raw.includes('\0')) throw hostile(archive, raw, 'is an absolute path');
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw hostile(archive, raw, 'climbs out with ..');
  return posix.join(...(parts.length ? parts : ['.'])).replace(/^\.$/, '');
}

function hostile(archive: string, raw: string, why: string): DeltaimgError {
  return new DeltaimgError('HOSTILE_PATH', `archive ${archive}: entry ${JSON.stringify(raw)} ${why}; refusing the archive`);
}

const SHA256 = /^sha256:[0-9a-f]{64}$/;

/** Checks a digest read from a manifest or index; `what` says where it was found. */
export function checkDigest(where: string, what: string, digest: unknown): string {
  if (typeof digest !== 'string' || !SHA256.test(digest)) {
    throw new DeltaimgError('BAD_IMAGE', `${where}: ${what} has digest ${JSON.stringify(digest)}; expected sha256:<64 hex digits>`);
  }
  return digest;
}

/** The layout path of a blob: blobs/sha256/<hex>. */
export function blobPath(digest: string): string {
  return `blobs/${digest.replace(':', '/')}`;
}
