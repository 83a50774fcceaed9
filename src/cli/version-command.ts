/** `deltaimg version`: the tool version and the versions of the formats it reads and writes. */
import type { Command } from 'commander';
import { FORMAT_NAME, FORMAT_VERSION } from '../delta/format.js';
import { DIMG_FORMAT, DIMG_VERSION } from '../imagedelta/format.js';
import { DELTA_IMAGE_VERSION, LABELS } from '../docker/labels.js';
import { nativeTarget, prebuiltFile } from '../util/prebuilds.js';
import { printJson } from './output.js';
import { toolVersion } from './version.js';

interface FormatVersion {
  name: string;
  what: string;
  /** The version this deltaimg writes. */
  writes: number;
  /** It reads files whose minReaderVersion is at most this. */
  readsUpTo: number;
}

export function formatVersions(): FormatVersion[] {
  return [
    { name: FORMAT_NAME, what: 'tree delta directory (deltaimg diff)', writes: FORMAT_VERSION, readsUpTo: FORMAT_VERSION },
    { name: DIMG_FORMAT, what: '.dimg image delta (deltaimg image diff)', writes: DIMG_VERSION, readsUpTo: DIMG_VERSION },
    {
      name: LABELS.version,
      what: 'delta image labels (deltaimg dockerfile diff)',
      writes: DELTA_IMAGE_VERSION,
      readsUpTo: DELTA_IMAGE_VERSION,
    },
  ];
}

export function registerVersionCommand(program: Command): void {
  program
    .command('version')
    .summary('show the version and the delta format versions it reads and writes')
    .option('--json', 'print it as JSON')
    .addHelpText('after', '\nExamples:\n  deltaimg version\n  deltaimg version --json | jq -r .formats[0].writes\n')
    .action((opts: { json?: boolean }) => {
      const addon = prebuiltFile('fsext.node');
      const report = {
        version: toolVersion(),
        node: process.version,
        platform: nativeTarget(),
        nativeAddon: { path: addon.path, present: addon.exists },
        vcdiff: 'RFC 3284, xdelta3 3.1.1 compatible (secondary compression djw, fgk)',
        formats: formatVersions(),
      };
      if (opts.json) {
        printJson(report);
        return;
      }
      const lines = [
        `deltaimg ${report.version} (node ${report.node}, ${report.platform}, native addon ${addon.exists ? 'present' : `MISSING at ${addon.path}`})`,
        'formats (writes / reads up to):',
        ...report.formats.map((f) => `  ${f.name.padEnd(20)} ${String(f.writes).padStart(2)} / ${f.readsUpTo}   ${f.what}`),
        `  ${'vcdiff'.padEnd(20)} ${report.vcdiff}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
