import { Command } from 'commander';
import { readFileSync } from 'node:fs';

export function toolVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** The `deltaimg` command tree. Each verb lives in its own module under cli/. */
export function buildProgram(): Command {
  const program = new Command('deltaimg')
    .version(toolVersion(), '-V, --version')
    .description('Ship container image updates as tiny binary deltas (per-file VCDIFF, RFC 3284).')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  return program;
}
