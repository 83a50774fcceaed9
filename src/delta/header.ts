/** Reading and validating deltaimg.json, the header that makes a delta complete. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeltaimgError, ioError } from '../util/errors.js';
import { FORMAT_NAME, FORMAT_VERSION, HEADER_FILE, type DeltaHeader } from './format.js';

export async function readHeader(deltaDir: string): Promise<DeltaHeader> {
  const path = join(deltaDir, HEADER_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `${deltaDir} is not a complete deltaimg delta (no ${HEADER_FILE}); make it with 'deltaimg diff' or copy it again`,
      );
    }
    throw ioError('read', path, err);
  }
  let h: Partial<DeltaHeader>;
  try {
    h = JSON.parse(text) as Partial<DeltaHeader>;
  } catch {
    throw new DeltaimgError('CORRUPT_DELTA', `${path} is not valid JSON; the delta is damaged, copy it again`);
  }
  if (h?.format !== FORMAT_NAME) {
    throw new DeltaimgError('CORRUPT_DELTA', `${path} is not a deltaimg delta header (format ${JSON.stringify(h?.format)})`);
  }
  const readerCanRead = typeof h.minReaderVersion === 'number' ? h.minReaderVersion : h.version;
  if (typeof readerCanRead !== 'number' || readerCanRead > FORMAT_VERSION) {
    throw new DeltaimgError(
      'UNSUPPORTED_VERSION',
      `${deltaDir} uses delta format v${h.version} (made by ${h.tool ?? 'a newer deltaimg'}); ` +
        `this deltaimg reads up to v${FORMAT_VERSION}: upgrade deltaimg to apply it`,
    );
  }
  if (!isEntriesInfo(h.entries) || !h.target || typeof h.target.treeSha256 !== 'string') {
    throw new DeltaimgError('CORRUPT_DELTA', `${path} lacks required fields; the delta is damaged, copy it again`);
  }
  return h as DeltaHeader;
}

function isEntriesInfo(e: unknown): e is DeltaHeader['entries'] {
  const x = e as DeltaHeader['entries'] | undefined;
  return (
    typeof x?.file === 'string' &&
    /^[A-Za-z0-9._-]+$/.test(x.file) &&
    typeof x.sha256 === 'string' &&
    Number.isSafeInteger(x.count)
  );
}
