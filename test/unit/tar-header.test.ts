/**
 * The one tar header codec (src/tar/header.ts), tested directly on blocks built byte by byte:
 * ustar name + prefix, GNU long names, pax records, base-256 numbers, checksums (unsigned,
 * old signed, wrong); and the archive index that reads image archives through it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexTar } from '../../src/image/tar-index.js';
import {
  BLOCK,
  canonicalChecksumField,
  checksumMatches,
  headerChecksum,
  longNameValue,
  nameAsText,
  normalizeMemberPath,
  paddingFor,
  parseHeader,
  parseNumeric,
  parsePax,
} from '../../src/tar/header.js';

interface Fields {
  name?: Buffer | string;
  size?: number | Buffer;
  typeflag?: string;
  linkname?: string;
  magic?: 'ustar' | 'gnu' | 'v7';
  prefix?: string;
  /** Store the old signed checksum instead of the unsigned one. */
  signedChecksum?: boolean;
}

/** A header block, written field by field at the offsets POSIX and GNU define. */
function block(f: Fields): Buffer {
  const b = Buffer.alloc(BLOCK);
  const name = typeof f.name === 'string' || f.name === undefined ? Buffer.from(f.name ?? 'file', 'utf8') : f.name;
  name.copy(b, 0, 0, 100);
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  if (Buffer.isBuffer(f.size)) f.size.copy(b, 124);
  else b.write(`${(f.size ?? 0).toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  b.write('14000000000\0', 136, 'latin1');
  b.write(f.typeflag ?? '0', 156, 'latin1');
  b.write(f.linkname ?? '', 157, 'latin1');
  if (f.magic === 'gnu') b.write('ustar  \0', 257, 'latin1');
  else if (f.magic !== 'v7') b.write('ustar\x0000', 257, 'latin1');
  if (f.prefix) b.write(f.prefix, 345, 'latin1');
  let sum = headerChecksum(b);
  if (f.signedChecksum) for (let i = 0; i < BLOCK; i++) if ((i < 148 || i >= 156) && b[i]! >= 0x80) sum -= 0x100;
  canonicalChecksumField(sum).copy(b, 148);
  return b;
}

/** One member: its header, then its payload padded to a block. */
function member(f: Fields, payload: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([block({ ...f, size: f.size ?? payload.length }), payload, Buffer.alloc(paddingFor(payload.length))]);
}

function paxPayload(records: Record<string, string>): Buffer {
  const parts = Object.entries(records).map(([k, v]) => {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len++;
    return Buffer.from(`${len}${body}`);
  });
  return Buffer.concat(parts);
}

describe('header fields', () => {
  it('ustar: the prefix joins the name; GNU headers use that space for other things', () => {
    const ustar = parseHeader(block({ name: 'libc.so.6', prefix: 'usr/lib/x86_64-linux-gnu' }));
    expect(ustar).toMatchObject({ name: 'usr/lib/x86_64-linux-gnu/libc.so.6', format: 'ustar', typeflag: '0', size: 0 });
    const gnu = parseHeader(block({ name: 'libc.so.6', prefix: 'ignored', magic: 'gnu' }));
    expect(gnu).toMatchObject({ name: 'libc.so.6', format: 'gnu' });
    expect(parseHeader(block({ magic: 'v7', typeflag: '\0' })).format).toBe('v7');
  });

  it('names stay bytes (latin1-held): UTF-8 and invalid UTF-8 alike come back unchanged', () => {
    const utf8 = parseHeader(block({ name: 'café/€.txt' }));
    expect(Buffer.from(utf8.name, 'latin1').toString('utf8')).toBe('café/€.txt');
    expect(nameAsText(utf8.name)).toBe('café/€.txt');
    const raw = Buffer.from([0x61, 0xe9, 0xff, 0x2e, 0x62]);
    expect(Buffer.from(parseHeader(block({ name: raw })).name, 'latin1').equals(raw)).toBe(true);
  });

  it('numbers: octal with spaces or NUL, empty is 0, base-256 for 8 GiB and more, garbage and negatives refused', () => {
    expect(parseNumeric(Buffer.from('00000001750\0'))).toBe(1000);
    expect(parseNumeric(Buffer.from('   1750 \0\0\0\0'))).toBe(1000);
    expect(parseNumeric(Buffer.alloc(12))).toBe(0);
    const big = Buffer.alloc(12);
    big[0] = 0x80;
    big.writeBigUInt64BE(10n * 2n ** 30n, 4);
    expect(parseNumeric(big)).toBe(10 * 2 ** 30);
    expect(parseHeader(block({ size: big })).size).toBe(10 * 2 ** 30);
    expect(parseNumeric(Buffer.from('0001x50\0'))).toBeUndefined();
    expect(parseNumeric(Buffer.from('12 34\0'))).toBeUndefined();
    const negative = Buffer.alloc(12, 0xff);
    expect(parseNumeric(negative)).toBeUndefined();
    const huge = Buffer.alloc(12, 0xff);
    huge[0] = 0x80;
    expect(parseNumeric(huge)).toBeUndefined();
  });

  it('checksums: the unsigned sum and the old signed one pass; one flipped byte fails', () => {
    const high = Buffer.from([0x61, 0xe9, 0xff]);
    expect(checksumMatches(block({ name: high }))).toBe(true);
    expect(checksumMatches(block({ name: high, signedChecksum: true }))).toBe(true);
    const damaged = block({ name: 'file' });
    damaged[10] = 0x41;
    expect(checksumMatches(damaged)).toBe(false);
    const garbage = block({});
    garbage.write('zzzzzz\0 ', 148, 'latin1');
    expect(checksumMatches(garbage)).toBe(false);
  });

  it('GNU long names end at the first NUL', () => {
    const long = `${'d/'.repeat(80)}file`;
    expect(longNameValue(Buffer.concat([Buffer.from(long), Buffer.alloc(1), Buffer.from('junk')]))).toBe(long);
  });
});

describe('pax records', () => {
  it('path, linkpath and size apply; later records win; GNU.sparse marks a sparse member', () => {
    const pax = parsePax(paxPayload({ path: 'a/ü.txt', linkpath: 'b', size: '12345', mtime: '1.5', 'GNU.sparse.major': '1' }));
    expect(pax).toMatchObject({ ok: true, linkpath: 'b', size: 12345, sparse: true });
    if (!pax.ok) return;
    expect(nameAsText(pax.path!)).toBe('a/ü.txt');
    const twice = parsePax(Buffer.concat([paxPayload({ path: 'first' }), paxPayload({ path: 'second' })]));
    expect(twice.ok && twice.path).toBe('second');
    expect(parsePax(Buffer.concat([paxPayload({ path: 'x' }), Buffer.alloc(20)]))).toMatchObject({ ok: true, path: 'x' });
  });

  it('a malformed record makes the whole header malformed', () => {
    expect(parsePax(Buffer.from('abc path=x\n'))).toMatchObject({ ok: false });
    expect(parsePax(Buffer.from('99 path=x\n'))).toMatchObject({ ok: false });
    expect(parsePax(Buffer.from('11 pathxyz\n'))).toMatchObject({ ok: false });
    expect(parsePax(Buffer.from('10 path=xy'))).toMatchObject({ ok: false });
    expect(parsePax(paxPayload({ size: '12k' }))).toMatchObject({ ok: false, why: expect.stringContaining('size') });
  });
});

describe('member paths', () => {
  it('leading / and ./ dropped; .., ., empty components and NUL refused', () => {
    expect(normalizeMemberPath('./usr/bin/')).toBe('usr/bin');
    expect(normalizeMemberPath('/etc/passwd')).toBe('etc/passwd');
    for (const bad of ['../x', 'a/../b', 'a//b', 'a/./b', '.', './', 'a\0b']) expect(normalizeMemberPath(bad), bad).toBeUndefined();
  });
});

describe('the archive index reads through the codec', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deltaimg-tar-header-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const archive = async (name: string, ...members: Buffer[]): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, Buffer.concat([...members, Buffer.alloc(2 * BLOCK)]));
    return path;
  };

  it('GNU long names, pax paths (UTF-8), ustar prefixes and old signed checksums all index', async () => {
    const long = `${'deep/'.repeat(30)}manifest.json`;
    const path = await archive(
      'ok.tar',
      member({ name: '././@LongLink', typeflag: 'L', magic: 'gnu' }, Buffer.from(`${long}\0`)),
      member({ name: 'truncated-name', magic: 'gnu' }, Buffer.from('long')),
      member({ name: 'PaxHeaders/x', typeflag: 'x' }, paxPayload({ path: 'dir/ünïcode.json' })),
      member({ name: 'ignored' }, Buffer.from('pax')),
      member({ name: 'b.json', prefix: 'a' }, Buffer.from('prefixed')),
      member({ name: Buffer.from('signed-\xe9', 'latin1'), signedChecksum: true }, Buffer.from('old')),
    );
    const index = await indexTar(path);
    expect(index.names()).toEqual([long, 'dir/ünïcode.json', 'a/b.json', nameAsText('signed-\xe9')]);
    expect(index.file('dir/ünïcode.json')).toMatchObject({ size: 3 });
  });

  it('a bad checksum, a malformed pax header and an unreadable size are refused in one line naming the archive', async () => {
    const damaged = block({ name: 'f' });
    damaged[0] = 0x67;
    await expect(indexTar(await archive('bad-sum.tar', damaged))).rejects.toThrow(
      /bad-sum.tar is not a tar archive or is damaged \(bad header checksum at byte 0\)/,
    );
    const badPax = await archive('bad-pax.tar', member({ name: 'x', typeflag: 'x' }, Buffer.from('7 pa\n')), member({ name: 'f' }));
    await expect(indexTar(badPax)).rejects.toThrow(/bad-pax.tar: malformed PAX header for entry x/);
    const badSize = await archive('bad-size.tar', block({ name: 'f', size: Buffer.from('12x45670000\0') }));
    await expect(indexTar(badSize)).rejects.toThrow(/bad-size.tar is damaged \(unreadable size field/);
  });
});
