/**
 * writeImages: one ImageRef destination, one output target. Files and directories are built
 * under a temp name beside the destination and renamed into place only when complete;
 * docker-daemon streams into `docker load`, whose failure is an error.
 */
import { createWriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { buildDirAtomically, streamingTo, writeFileAtomically } from '../util/atomic-output.js';
import { DeltaimgError, ioError } from '../util/errors.js';
import { loadIntoDaemon } from './daemon.js';
import { writeClassicArchive } from './docker-archive-writer.js';
import { writeOciLayout } from './oci-writer.js';
import type { ImageRef } from './ref.js';
import { pushImages } from './registry/writer.js';
import { dirSink, tarSink, type LayoutSink } from './sinks.js';
import type { Image, WriteOptions, WrittenImage } from './types.js';

type Writer = (sink: LayoutSink, images: Image[]) => Promise<WrittenImage[]>;

const classic: Writer = writeClassicArchive;
const oci: Writer = (sink, images) => writeOciLayout(sink, images);
const dockerOci: Writer = (sink, images) => writeOciLayout(sink, images, { dockerManifest: true });

export async function writeImages(dest: ImageRef, images: Image[], opts: WriteOptions = {}): Promise<WrittenImage[]> {
  if (images.length === 0) throw new DeltaimgError('USAGE', 'no images to write');
  switch (dest.transport) {
    case 'docker-archive':
      return toTarFile(dest.path, renamedAs(images, dest.ref), opts.format === 'oci' ? dockerOci : classic);
    case 'oci-archive':
      return toTarFile(dest.path, renamedAs(images, dest.ref), oci);
    case 'oci':
      return buildDirAtomically(dest.path, async (dir) => {
        const sink = dirSink(dir);
        const written = await oci(sink, renamedAs(images, dest.ref));
        await sink.finish();
        return written;
      });
    case 'stdio':
      return toStdout(images, opts.format === 'oci' ? dockerOci : classic);
    case 'docker-daemon':
      if (images.length !== 1) {
        throw new DeltaimgError('USAGE', `docker-daemon:${dest.name} can take one image, not ${images.length}; pick a platform`);
      }
      return toDaemon(renamedAs(images, dest.name), classic);
    case 'docker':
      return (await pushImages(dest, images, opts.registry)).images;
  }
}

/** A REF in the destination names every image written. */
function renamedAs(images: Image[], ref: string | undefined): Image[] {
  return ref === undefined ? images : images.map((i) => ({ ...i, names: [ref] }));
}

async function toTarFile(path: string, images: Image[], write: Writer): Promise<WrittenImage[]> {
  return writeFileAtomically(resolve(path), async (temp) => {
    const out = createWriteStream(temp, { flags: 'wx' });
    try {
      const sink = tarSink(out, { endOutput: true });
      const written = await write(sink, images);
      await sink.finish();
      return written;
    } catch (err) {
      out.destroy();
      throw err instanceof DeltaimgError ? err : ioError('write', resolve(path), err);
    }
  });
}

async function toStdout(images: Image[], write: Writer): Promise<WrittenImage[]> {
  if (process.stdout.isTTY)
    throw new DeltaimgError('USAGE', 'refusing to write an image archive to a terminal; redirect stdout to a file or a pipe');
  const streamed = streamingTo('standard output');
  try {
    const sink = tarSink(process.stdout, { endOutput: false });
    const written = await write(sink, images);
    await sink.finish();
    return written;
  } catch (err) {
    throw err instanceof DeltaimgError ? err : ioError('write', 'standard output', err);
  } finally {
    streamed();
  }
}

async function toDaemon(images: Image[], write: Writer): Promise<WrittenImage[]> {
  const load = loadIntoDaemon();
  load.done.catch(() => {}); // awaited below; a load that dies early also fails the writes
  try {
    const sink = tarSink(load.input, { endOutput: true });
    const written = await write(sink, images);
    await sink.finish();
    await load.done;
    return written;
  } catch (err) {
    load.cancel();
    // docker load's own words say more than a broken pipe does.
    const loadError = await load.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (err instanceof DeltaimgError && err.code !== 'DOCKER') throw err;
    throw loadError instanceof DeltaimgError ? loadError : err;
  }
}
