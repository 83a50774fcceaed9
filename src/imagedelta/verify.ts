/**
 * `deltaimg image verify`: every layer of an image hashes to its diff_id, the config to its
 * digest; with a `.dimg`, the image is also the exact target that delta restores.
 */
import { openImageSource, verifyImageSource, type ImageRef, type RegistryOptions, type VerifyReport } from '../image/index.js';
import { readDimgHeader } from './container.js';
import { withScratchDir } from '../util/atomic-output.js';

export interface ExpectedImage {
  platform: string;
  configDigest: string;
  /** Why the image is not the expected one; absent when it is. */
  problem?: string;
}

export interface ImageVerifyResult {
  report: VerifyReport;
  expected: ExpectedImage[];
  ok: boolean;
}

export async function verifyImage(
  ref: ImageRef,
  opts: { against?: string; tmpDir?: string; registry?: RegistryOptions } = {},
): Promise<ImageVerifyResult> {
  return withScratchDir(opts.tmpDir, 'deltaimg-image-verify-', async (work) => {
    const source = await openImageSource(ref, { tmpDir: work, ...(opts.registry ? { registry: opts.registry } : {}) });
    try {
      const report = await verifyImageSource(source);
      const expected = opts.against ? await compareWithDelta(source.images(), opts.against) : [];
      return { report, expected, ok: report.ok && expected.every((e) => !e.problem) };
    } finally {
      await source.close();
    }
  });
}

async function compareWithDelta(
  images: { configDigest: string; layers: { diffId: string }[] }[],
  dimgPath: string,
): Promise<ExpectedImage[]> {
  const header = await readDimgHeader(dimgPath);
  return header.images.map((want) => {
    const found = images.find((img) => img.configDigest === want.target.configDigest);
    const base = { platform: want.platform, configDigest: want.target.configDigest };
    if (!found)
      return { ...base, problem: `no image with id ${want.target.configDigest} (the target of ${dimgPath}) for ${want.platform}` };
    const diffIds = found.layers.map((l) => l.diffId).join();
    if (diffIds !== want.target.layers.map((l) => l.diffId).join()) return { ...base, problem: 'its layers differ from the recorded ones' };
    return base;
  });
}
