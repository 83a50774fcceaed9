/**
 * Where the package's native files are: prebuilds/<platform>-<arch>[-musl]/ under the package
 * root, the folder naming of prebuildify/node-gyp-build. `npm pack` fills it for every target
 * the package ships (native-build/build.mjs --all); `npm run build:native` for this machine only.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The package root: this module is src/util/ or dist/util/, two levels below it. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');

const SHIPPED_TARGETS = ['linux-x64', 'linux-arm64', 'linux-x64-musl'] as const;

/** Whether this node links musl (Alpine) rather than glibc: the report has no glibc version then. */
function isMusl(): boolean {
  if (process.platform !== 'linux') return false;
  const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } };
  return report.header?.glibcVersionRuntime === undefined;
}

let target: string | undefined;

/** This machine's target name, e.g. linux-x64 or linux-x64-musl. */
export function nativeTarget(): string {
  target ??= `${process.platform}-${process.arch}${isMusl() ? '-musl' : ''}`;
  return target;
}

/** prebuilds/<this target>/<name>, and whether it is there. */
export function prebuiltFile(name: string): { path: string; exists: boolean } {
  const path = `${PACKAGE_ROOT}/prebuilds/${nativeTarget()}/${name}`;
  return { path, exists: existsSync(path) };
}

/** The one-line advice for a machine the package has no (working) prebuilt file for. */
export function buildFromSourceHint(): string {
  const shipped = (SHIPPED_TARGETS as readonly string[]).includes(nativeTarget())
    ? ''
    : ` (the package ships ${SHIPPED_TARGETS.join(', ')})`;
  return `build it from source for ${nativeTarget()}${shipped} with \`node ${PACKAGE_ROOT}/native-build/build.mjs\` (needs a C compiler)`;
}
