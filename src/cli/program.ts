import { Command } from 'commander';
import { registerTreeCommands } from './tree-commands.js';
import { registerDockerfileCommand } from './dockerfile-command.js';
import { registerVcdiffCommand } from './vcdiff-command.js';
import { registerImageCommand } from './image-command.js';
import { registerLayerCommand } from './layer-command.js';
import { registerRuntimeCommand } from './runtime-command.js';
import { toolVersion } from './version.js';


/** The `deltaimg` command tree. Each verb lives in its own module under cli/. */
export function buildProgram(): Command {
  const program = new Command('deltaimg')
    .version(toolVersion(), '-V, --version')
    .description('Ship container image updates as tiny binary deltas (per-file VCDIFF, RFC 3284).')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .addHelpText(
      'after',
      '\nThe Docker workflow:\n' +
        '  deltaimg dockerfile diff app:1 app:2 | docker build -t app:1-to-2 -     # a small layer on top of app:1\n' +
        '  deltaimg dockerfile apply app:1-to-2 | docker build -t app:2 -          # restores app:2\n' +
        '\nThe same on plain directories, no Docker needed:\n' +
        '  deltaimg diff ./v1 ./v2 --out ./v1-to-v2\n' +
        '  deltaimg apply ./v1 ./v1-to-v2 --out ./v2-restored\n' +
        '  deltaimg inspect ./v1-to-v2',
    );
  registerTreeCommands(program);
  registerDockerfileCommand(program);
  registerImageCommand(program);
  registerVcdiffCommand(program);
  registerRuntimeCommand(program);
  registerLayerCommand(program);
  return program;
}
