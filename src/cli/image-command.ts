/** `deltaimg image diff|apply|verify|inspect`: bit-identical image deltas between archives, no engine needed. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import type { ImageRef } from '../image/index.js';
import { DeltaimgError } from '../util/errors.js';
import { parseMemorySize } from '../util/memory-budget.js';
import { createProgress } from '../util/progress.js';
import { printJson } from './output.js';
import { requireNativeAddon } from './preflight.js';
import { registryOptions, withRegistryOptions, type RegistryFlags } from './registry-flags.js';
import { toolVersion } from './version.js';

interface DiffFlags {
  out?: string;
  push?: boolean;
  from?: string[];
  platform?: string[];
  tmpDir?: string;
  memory?: number;
  /** false with --no-exact-blobs. */
  exactBlobs?: boolean;
}

interface OutputFlags {
  quiet?: boolean;
  json?: boolean;
}

const REFS_HELP =
  '\nImage references (containers-transports syntax):\n' +
  '  docker-archive:PATH[:REF]   a `docker save` tar (classic or OCI-layout form)\n' +
  '  oci:DIR[:REF]               an OCI image layout directory\n' +
  '  oci-archive:PATH[:REF]      a tar of an OCI image layout\n' +
  '  docker-daemon:NAME[:TAG]    an image of the local engine (docker save / docker load)\n' +
  '  docker://REGISTRY/REPO[:TAG|@DIGEST]  an image in a registry (only the blobs a job needs are fetched)\n' +
  '  NAME:TAG                    the same as docker-daemon:NAME:TAG (when no file has that name)\n' +
  '  -                           an archive on stdin (as input) or a docker-archive on stdout (as output)';

export function registerImageCommand(program: Command): void {
  const image = program
    .command('image')
    .summary('image deltas between image archives, restored bit for bit (no Docker build needed)')
    .description(
      'Deltas between whole images for air-gapped transfer: one .dimg file that rebuilds image B from image A\n' +
        'with the same image id (config digest) and the same layer diff_ids as the original.',
    )
    .addHelpText(
      'after',
      '\nExample:\n' +
        '  docker save app:1 -o a.tar; docker save app:2 -o b.tar\n' +
        '  deltaimg image diff docker-archive:a.tar docker-archive:b.tar -o a-to-b.dimg\n' +
        '  deltaimg image apply docker-archive:a.tar a-to-b.dimg -o docker-archive:b-restored.tar\n' +
        '  deltaimg image verify docker-archive:b-restored.tar --against a-to-b.dimg\n' +
        REFS_HELP,
    );

  withRegistryOptions(image.command('diff'))
    .summary('write a .dimg that rebuilds TARGET from BASE')
    .description(
      'Layers TARGET shares with BASE are referenced; every other layer is split into its tar headers and its\n' +
        "files, the files delta'd against BASE's root filesystem (same path, moved, versioned names), so apply\n" +
        'can rebuild each layer tar byte for byte.',
    )
    .argument('<BASE>', 'the image the receiver has (e.g. docker-archive:a.tar); with --from, give only TARGET')
    .argument('[TARGET]', 'the image to ship (e.g. docker-archive:b.tar)')
    .option('-o, --out <DIMG>', "the .dimg file to write (must not exist; '-' for stdout); optional with --push")
    .option('--push', 'publish the .dimg in the registry beside TARGET (docker://...), as an OCI artifact deltaimg pull finds')
    .option('--from <IMAGES>', 'with --push: several bases, comma-separated or repeated, one delta each', collectList)
    // Repeatable and comma-separated (like docker's --platform), not variadic: a variadic option would swallow BASE and TARGET after it.
    .option(
      '--platform <os/arch[/variant]>',
      'platforms to diff, repeatable or comma-separated (default: every platform both images have)',
      collectPlatforms,
    )
    .option('--tmp-dir <DIR>', "scratch space (BASE's root filesystem is extracted there; default the OS temp dir)")
    .option(
      '--memory <SIZE>',
      'memory budget, e.g. 800M or 2G (default: a quarter of the machine, at most 1G); large files are diffed in segments within it',
      parseMemorySize,
    )
    .option(
      '--no-exact-blobs',
      "leave out the token recipes that rebuild gzip'd blobs no zlib setting reproduces (Go's gzip, as docker push and BuildKit make them): a much smaller .dimg; apply still gives B's image id and diff_ids, not its blob and manifest digests",
    )
    .option('--json', 'print a machine-readable summary on stdout')
    .option('-q, --quiet', 'no progress and no summary on stderr')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg image diff docker-archive:a.tar docker-archive:b.tar -o a-to-b.dimg\n' +
        '  deltaimg image diff docker://registry.example/app:1 docker://registry.example/app:2 -o a-to-b.dimg --no-exact-blobs  # for an engine\n' +
        '  deltaimg image diff app:1 app:2 -o app-1-to-2.dimg                 # images of the local engine\n' +
        '  deltaimg image diff docker://registry.example/app:1 docker://registry.example/app:2 -o a-to-b.dimg\n' +
        '  deltaimg image diff oci:layout:1 oci:layout:2 --platform linux/arm64 -o arm64.dimg\n' +
        REFS_HELP,
    )
    .action(async (first: string, second: string | undefined, opts: OutputFlags & RegistryFlags & DiffFlags) => {
      const { parsePlatform } = await import('../image/index.js');
      const { diffImages, imageSavedLine } = await import('../imagedelta/index.js');
      await requireNativeAddon();
      const diffOpts = {
        progress: createProgress({ quiet: opts.quiet }),
        ...(opts.platform ? { platforms: opts.platform.map(parsePlatform) } : {}),
        ...(opts.tmpDir ? { tmpDir: opts.tmpDir } : {}),
        ...(opts.memory ? { memoryBytes: opts.memory } : {}),
        exactBlobs: opts.exactBlobs !== false,
        toolVersion: toolVersion(),
        registry: registryOptions(opts),
      };
      if (opts.push || opts.from) return diffAndPush(first, second, opts, diffOpts);
      if (second === undefined)
        throw new DeltaimgError('USAGE', 'image diff takes BASE and TARGET (or TARGET alone with --from BASES --push)');
      if (!opts.out) throw new DeltaimgError('USAGE', 'image diff needs -o DIMG (or --push to publish the delta in the registry)');
      const base = first;
      const target = second;
      if (opts.out === '-' && opts.json) throw new DeltaimgError('USAGE', '--json and --out - both use stdout; pick one');
      assertOneStdin({ BASE: base, TARGET: target });
      const result = await diffImages(await imageArg(base), await imageArg(target), opts.out, diffOpts);
      if (opts.json) {
        printJson({
          out: opts.out,
          bytes: result.bytes,
          newLayerBytes: result.newLayerBytes,
          sharedLayers: result.sharedLayers,
          recipeBytes: result.recipeBytes,
          rebuiltLayers: result.header.layers.length,
          images: result.header.images.map((i) => ({ platform: i.platform, base: i.base.configDigest, target: i.target.configDigest })),
        });
      }
      if (!opts.quiet) {
        process.stderr.write(
          `deltaimg: ${imageSavedLine(opts.out, result.header, result.bytes, result.newLayerBytes, result.sharedLayers, result.recipeBytes)}\n`,
        );
      }
    });

  withRegistryOptions(image.command('apply'))
    .summary('rebuild the target image from BASE and a .dimg')
    .description(
      'Rebuilds every layer, checks each against its diff_id and the config against its digest before\n' +
        'writing, and writes OUT only when all of it is right: loading it gives the original image id.',
    )
    .argument('<BASE>', 'the image the delta was made against')
    .argument('<DIMG>', "a file made by 'deltaimg image diff' ('-' for stdin)")
    .requiredOption('-o, --out <IMAGE>', 'where to write the image (e.g. docker-archive:b.tar, oci:dir, docker-daemon:app:2)')
    .option('--format <classic|oci>', 'layout of a docker-archive result', 'classic')
    .option(
      '--platform <os/arch[/variant]>',
      'platforms to restore, repeatable or comma-separated (default: every image the .dimg holds)',
      collectPlatforms,
    )
    .option('--tmp-dir <DIR>', 'scratch space (default the OS temp dir)')
    .option(
      '--memory <SIZE>',
      'memory budget, e.g. 800M or 2G (default: a quarter of the machine, at most 1G); large files are restored within it',
      parseMemorySize,
    )
    .option('--json', 'print a machine-readable summary on stdout')
    .option('-q, --quiet', 'no progress and no summary on stderr')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg image apply docker-archive:a.tar a-to-b.dimg -o docker-archive:b.tar\n' +
        "  deltaimg image apply app:1 app-1-to-2.dimg -o docker-daemon:app:2      # docker load: B's image id\n" +
        '  deltaimg image apply docker-archive:a.tar - -o - < a-to-b.dimg > b.tar  # stdin to stdout\n' +
        REFS_HELP,
    )
    .action(
      async (
        base: string,
        dimg: string,
        opts: OutputFlags & RegistryFlags & { out: string; format: string; platform?: string[]; tmpDir?: string; memory?: number },
      ) => {
        const { parsePlatform } = await import('../image/index.js');
        const { applyImageDelta } = await import('../imagedelta/index.js');
        await requireNativeAddon();
        if (opts.format !== 'classic' && opts.format !== 'oci')
          throw new DeltaimgError('USAGE', `--format must be classic or oci, not ${opts.format}`);
        const dest = await imageArg(opts.out);
        if (dest.transport === 'stdio' && opts.json) throw new DeltaimgError('USAGE', '--json and --out - both use stdout; pick one');
        assertOneStdin({ BASE: base, DIMG: dimg });
        const result = await applyImageDelta(await imageArg(base), dimg, dest, {
          progress: createProgress({ quiet: opts.quiet }),
          format: opts.format,
          ...(opts.platform ? { platforms: opts.platform.map(parsePlatform) } : {}),
          ...(opts.tmpDir ? { tmpDir: opts.tmpDir } : {}),
          registry: registryOptions(opts),
          ...(opts.memory ? { memoryBytes: opts.memory } : {}),
        });
        if (opts.json) printJson({ out: opts.out, verified: true, images: result.images });
        if (!opts.quiet) {
          for (const img of result.images) {
            process.stderr.write(
              `deltaimg: restored ${img.platform} image ${img.configDigest} (${img.layers} layers, ${img.rebuiltLayers} rebuilt, all verified) into ${opts.out}\n`,
            );
            if (img.manifestNote)
              process.stderr.write(`deltaimg: note: manifest digest differs from ${img.originalManifestDigest}: ${img.manifestNote}\n`);
          }
        }
      },
    );

  withRegistryOptions(image.command('verify'))
    .summary("check an image's layers and config against their digests")
    .argument('<IMAGE>', 'the image to check (e.g. docker-archive:b-restored.tar)')
    .option('--against <DIMG>', 'also check that it is exactly the target this .dimg restores')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg image verify docker-archive:b-restored.tar                      # every layer against its diff_id\n' +
        '  deltaimg image verify docker-archive:b-restored.tar --against a-to-b.dimg  # and exactly the image the .dimg restores\n' +
        '  deltaimg image verify app:2 --json                                        # an image of the local engine\n' +
        REFS_HELP,
    )
    .action(async (ref: string, opts: OutputFlags & RegistryFlags & { against?: string }) => {
      const { verifyImage } = await import('../imagedelta/index.js');
      assertOneStdin({ IMAGE: ref, '--against': opts.against });
      const result = await verifyImage(await imageArg(ref), {
        ...(opts.against ? { against: opts.against } : {}),
        registry: registryOptions(opts),
      });
      if (opts.json) printJson({ image: ref, ...result });
      else process.stdout.write(verifyText(ref, result) + '\n');
      if (!result.ok) throw new DeltaimgError('VERIFY_FAILED', `${ref} failed verification${opts.json ? '' : ' (see above)'}`);
    });

  image
    .command('inspect')
    .summary('show what a .dimg holds')
    .argument('<DIMG>', "a file made by 'deltaimg image diff'")
    .option('--json', 'print the header as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  deltaimg image inspect a-to-b.dimg                         # images, platforms, rebuilt layers and sizes\n' +
        "  deltaimg image inspect a-to-b.dimg --json | jq '.images'    # the header as JSON\n",
    )
    .action(async (dimg: string, opts: OutputFlags) => {
      const { readDimgHeader, inspectDimg } = await import('../imagedelta/index.js');
      const header = await readDimgHeader(dimg);
      if (opts.json) printJson(header);
      else process.stdout.write(inspectDimg(dimg, header) + '\n');
    });
}

type VerifyResult = Awaited<ReturnType<typeof import('../imagedelta/index.js').verifyImage>>;

function verifyText(ref: string, result: VerifyResult): string {
  const lines: string[] = [];
  for (const img of result.report.images) {
    const bad = img.layers.filter((l) => !l.ok);
    lines.push(
      `${ref} ${img.platform}: image ${img.configDigest}, ${img.layers.length} layers${bad.length ? `, ${bad.length} DAMAGED` : ', all match their diff_ids'}`,
    );
    for (const l of bad) lines.push(`  layer ${l.diffId} hashes to ${l.actual ?? '?'}`);
  }
  for (const e of result.expected)
    lines.push(
      e.problem ? `not the expected ${e.platform} image: ${e.problem}` : `${e.platform}: exactly the expected image ${e.configDigest}`,
    );
  return lines.join('\n');
}

/**
 * An image argument: the containers-transports syntax, or a plain NAME:TAG taken as
 * docker-daemon:NAME:TAG (with a note) when no file of that name is here to make it ambiguous.
 */
async function imageArg(text: string): Promise<ImageRef> {
  const { parseImageRef, isPlainImageName } = await import('../image/index.js');
  try {
    return parseImageRef(text);
  } catch (err) {
    if (!isPlainImageName(text)) throw err;
    if (existsSync(text)) {
      throw new DeltaimgError(
        'USAGE',
        `"${text}" is both a file here and an image name: write docker-archive:${text} for the file or docker-daemon:${text} for the engine's image`,
      );
    }
    process.stderr.write(`deltaimg: note: taking ${text} as docker-daemon:${text} (the local Docker engine's image)\n`);
    return { transport: 'docker-daemon', name: text };
  }
}

/** stdin can be read only once, so at most one input may be '-'. */
function assertOneStdin(inputs: Record<string, string | undefined>): void {
  const fromStdin = Object.keys(inputs).filter((name) => inputs[name] === '-');
  if (fromStdin.length > 1)
    throw new DeltaimgError(
      'USAGE',
      `${fromStdin.join(' and ')} are both '-' (stdin); only one input can come from stdin, give the other as a file`,
    );
}

function collectList(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').filter((p) => p !== '')];
}

/** `image diff [BASE] TARGET --push [--from BASES]`: one delta per base, each published beside TARGET. */
async function diffAndPush(
  first: string,
  second: string | undefined,
  opts: OutputFlags & DiffFlags,
  diffOpts: import('../imagedelta/index.js').ImageDiffOptions,
): Promise<void> {
  const { diffAndPublish, imageSavedLine } = await import('../imagedelta/index.js');
  if (!opts.push) throw new DeltaimgError('USAGE', '--from publishes several deltas: add --push');
  const bases = opts.from ?? (second !== undefined ? [first] : []);
  const targetText = opts.from ? (second === undefined ? first : undefined) : second;
  if (targetText === undefined)
    throw new DeltaimgError(
      'USAGE',
      opts.from ? 'with --from, give only TARGET (the bases are in --from)' : 'image diff --push takes BASE and TARGET',
    );
  if (bases.length === 0) throw new DeltaimgError('USAGE', '--from names no image');
  const target = await imageArg(targetText);
  if (target.transport !== 'docker')
    throw new DeltaimgError(
      'USAGE',
      `--push publishes the delta beside TARGET in its registry: TARGET must be docker://REGISTRY/REPO:TAG, not ${targetText}`,
    );
  if (opts.out !== undefined && (opts.out === '-' || bases.length > 1))
    throw new DeltaimgError('USAGE', '-o with --push keeps the .dimg of one base in a file; drop -o for several bases');
  const baseRefs = [];
  for (const b of bases) baseRefs.push(await imageArg(b));
  assertOneStdin(Object.fromEntries(bases.map((b, i) => [`base ${i + 1}`, b])));
  const results = await diffAndPublish(baseRefs, target, opts.out, diffOpts);
  if (opts.json) {
    printJson(
      results.map((r) => ({
        base: r.base,
        target: r.target,
        subject: r.subject,
        artifact: r.published.artifactDigest,
        listedBy: r.published.listedBy,
        bytes: r.published.bytes,
        ...(r.light ? { light: { artifact: r.light.artifactDigest, bytes: r.light.bytes } } : {}),
        newLayerBytes: r.dimg.newLayerBytes,
        sharedLayers: r.dimg.sharedLayers,
      })),
    );
  }
  if (!opts.quiet) {
    for (const r of results) {
      process.stderr.write(
        `deltaimg: ${imageSavedLine(`delta from ${r.base}`, r.dimg.header, r.dimg.bytes, r.dimg.newLayerBytes, r.dimg.sharedLayers)}\n`,
      );
      process.stderr.write(
        `deltaimg: pushed as ${r.target}@${r.published.artifactDigest} (subject ${r.subject}, listed by ${r.published.listedBy === 'tag-schema' ? 'the referrers tag schema' : 'the referrers API'})\n`,
      );
      if (r.light) {
        process.stderr.write(
          `deltaimg: and a lighter variant for engines (no exact-deflate recipes, same image id): ${r.target}@${r.light.artifactDigest}, ${r.light.bytes} bytes\n`,
        );
      }
    }
  }
}

function collectPlatforms(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').filter((p) => p !== '')];
}
