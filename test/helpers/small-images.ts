/**
 * A small image pair as classic `docker save` archives, made by hand (no engine): A with a
 * base layer, B with that layer changed (an edited config file, a grown binary-ish file, a new
 * file, a symlink) plus a second layer. Small enough for hundreds of damaged-input cases.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import tar from 'tar-stream';
import { classicArchive, writeTar } from './image-archives.js';

/** What tar-stream's pack.entry takes: a header with only the name required. */
type TarEntryHeader = Partial<tar.Header> & Pick<tar.Header, 'name'>;

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink'; data?: string | Buffer; linkname?: string };

async function layerTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header: TarEntryHeader = {
      name: e.name,
      type,
      mode: type === 'directory' ? 0o755 : 0o644,
      mtime: new Date(1_700_000_000_000),
      uid: 0,
      gid: 0,
      ...(e.linkname ? { linkname: e.linkname } : {}),
    };
    if (type === 'file') pack.entry(header, Buffer.from(e.data ?? ''));
    else pack.entry(header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function config(layers: Buffer[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/bin:/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map(sha) },
    }),
  );
}

/** Deterministic pseudo-random bytes (a seed string, a length). */
export function seededBytes(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  let block = Buffer.alloc(0);
  for (let i = 0; i < n; i++) {
    if (i % 32 === 0) block = createHash('sha256').update(`${seed}:${i}`).digest();
    out[i] = block[i % 32]!;
  }
  return out;
}

export async function smallImagePair(dir: string): Promise<{ aTar: string; bTar: string }> {
  const conf = (n: number) => Array.from({ length: 300 }, (_, i) => `option_${i} = ${(i * n) % 977}\n`).join('');
  const bin = seededBytes('bin', 40_000);
  const aLayer = await layerTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/app.conf', data: conf(7) },
    { name: 'usr/', type: 'directory' },
    { name: 'usr/bin/', type: 'directory' },
    { name: 'usr/bin/tool', data: bin },
    { name: 'usr/bin/small', data: 'tiny\n' },
  ]);
  const bLayer = await layerTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/app.conf', data: conf(7).replace('option_3 ', 'option_three ') },
    { name: 'usr/', type: 'directory' },
    { name: 'usr/bin/', type: 'directory' },
    { name: 'usr/bin/tool', data: Buffer.concat([bin.subarray(0, 20_000), Buffer.from('patched'), bin.subarray(20_000)]) },
    { name: 'usr/bin/small', data: 'tiny\n' },
    { name: 'usr/bin/new', data: seededBytes('new', 30_000) },
    { name: 'usr/bin/link', type: 'symlink', linkname: 'tool' },
  ]);
  const bExtra = await layerTar([
    { name: 'opt/', type: 'directory' },
    { name: 'opt/notes.txt', data: conf(3) },
  ]);
  const aTar = join(dir, 'a.tar');
  const bTar = join(dir, 'b.tar');
  await writeTar(aTar, classicArchive(config([aLayer]), [aLayer], 'deltaimg-test/small-a:1'));
  await writeTar(bTar, classicArchive(config([bLayer, bExtra]), [bLayer, bExtra], 'deltaimg-test/small-b:1'));
  return { aTar, bTar };
}
