/** Opens any ImageRef for reading: one reader per transport, behind ImageSource. */
import { stat } from 'node:fs/promises';
import { DeltaimgError, ioError } from '../util/errors.js';
import { saveFromDaemon } from './daemon.js';
import { readDockerArchive } from './docker-archive-reader.js';
import { dirFiles, type LayoutFiles, tarFiles } from './layout-files.js';
import { readOciLayout } from './oci-reader.js';
import type { RegistryOptions } from './registry/client.js';
import { readRegistryImages } from './registry/reader.js';
import { formatImageRef, type ImageRef } from './ref.js';
import { spool, type Spool } from './spool.js';
import { indexTar } from './tar-index.js';
import type { Image, ImageSource } from './types.js';

export interface OpenOptions {
  /** Where stdin and `docker save` output are spooled (default: the OS temp dir). */
  tmpDir?: string;
  /** docker:// sources: credentials and TLS. */
  registry?: RegistryOptions;
}

export async function openImageSource(ref: ImageRef, opts: OpenOptions = {}): Promise<ImageSource> {
  switch (ref.transport) {
    case 'docker-archive':
      return source(ref, await readDockerArchive(await archiveFiles(ref.path), ref.ref));
    case 'oci-archive':
      return source(ref, await readOciLayout(await archiveFiles(ref.path), ref.ref));
    case 'oci':
      await mustBeDir(ref.path);
      return source(ref, await readOciLayout(dirFiles(ref.path), ref.ref));
    case 'stdio':
      return fromSpool(ref, await spool(process.stdin, opts.tmpDir, 'stdin'), (files) => readAnyArchive(files));
    case 'docker-daemon':
      return fromSpool(ref, await saveFromDaemon(ref.name, opts.tmpDir), (files) => readDockerArchive(files));
    case 'docker': {
      const read = await readRegistryImages(ref, opts.registry);
      return { ref, images: () => read.images, ...(read.index ? { index: read.index } : {}), close: async () => {} };
    }
  }
}

function source(ref: ImageRef, images: Image[], cleanup: () => Promise<void> = async () => {}): ImageSource {
  return { ref, images: () => images, close: cleanup };
}

async function fromSpool(ref: ImageRef, spooled: Spool, read: (files: LayoutFiles) => Promise<Image[]>): Promise<ImageSource> {
  try {
    // Messages name what the user gave, not the temp file.
    const files = tarFiles(await indexTar(spooled.file, formatImageRef(ref)));
    return source(ref, await read(files), spooled.remove);
  } catch (err) {
    await spooled.remove();
    throw err;
  }
}

/** stdin: a docker-archive when it has manifest.json, else an OCI archive. */
async function readAnyArchive(files: LayoutFiles): Promise<Image[]> {
  return (await files.size('manifest.json')) !== undefined ? readDockerArchive(files) : readOciLayout(files);
}

async function archiveFiles(path: string): Promise<LayoutFiles> {
  return tarFiles(await indexTar(path));
}

async function mustBeDir(path: string): Promise<void> {
  try {
    if (!(await stat(path)).isDirectory())
      throw new DeltaimgError('USAGE', `${path} is not a directory; oci: takes an OCI image layout directory (use oci-archive: for a tar)`);
  } catch (err) {
    if (err instanceof DeltaimgError) throw err;
    throw ioError('open', path, err);
  }
}
