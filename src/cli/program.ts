import { Command, CommanderError, type Option } from 'commander';
import { registerTreeCommands } from './tree-commands.js';
import { registerDockerfileCommand } from './dockerfile-command.js';
import { registerVcdiffCommand } from './vcdiff-command.js';
import { registerImageCommand } from './image-command.js';
import { registerPullCommand } from './pull-command.js';
import { registerLayerCommand } from './layer-command.js';
import { registerRuntimeCommand } from './runtime-command.js';
import { registerVersionCommand } from './version-command.js';
import { registerCompletionCommand } from './completion.js';
import { toolVersion } from './version.js';

/** Usage errors (commander's own included) exit 2, like every other usage error of deltaimg. */
export const USAGE_EXIT = 2;

/** The `deltaimg` command tree. Each verb lives in its own module under cli/. */
export function buildProgram(): Command {
  const program = new Command('deltaimg')
    .version(toolVersion(), '-V, --version')
    .description('Ship container image updates as tiny binary deltas (per-file VCDIFF, RFC 3284).')
    // Settings set here are inherited by every verb registered below.
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ minWidthToWrap: 30 })
    .configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: (s, write) => write(`deltaimg: ${s}`) })
    .addHelpText(
      'after',
      '\nThe Docker workflow:\n' +
        '  deltaimg dockerfile diff app:1 app:2 | docker build -t app:1-to-2 -     # a small layer on top of app:1\n' +
        '  deltaimg dockerfile apply app:1-to-2 | docker build -t app:2 -          # restores app:2\n' +
        '\nThe same on plain directories, no Docker needed:\n' +
        '  deltaimg diff ./v1 ./v2 --out ./v1-to-v2\n' +
        '  deltaimg apply ./v1 ./v1-to-v2 --out ./v2-restored\n' +
        '  deltaimg inspect ./v1-to-v2\n' +
        '\nRun deltaimg COMMAND --help for its options and examples.',
    );
  registerTreeCommands(program);
  registerDockerfileCommand(program);
  registerImageCommand(program);
  registerPullCommand(program);
  registerVcdiffCommand(program);
  registerRuntimeCommand(program);
  registerLayerCommand(program);
  registerVersionCommand(program);
  registerCompletionCommand(program);
  forEachCommand(program, (cmd) => {
    unwrapDescription(cmd);
    checkRequiredOptionsAfterArguments(cmd);
  });
  return program;
}

function forEachCommand(cmd: Command, visit: (cmd: Command) => void): void {
  visit(cmd);
  for (const sub of cmd.commands) forEachCommand(sub, visit);
}

/**
 * Descriptions are written with line breaks for the source's sake; help wraps at words to the
 * terminal, so single breaks become spaces (a blank line still separates paragraphs).
 */
function unwrapDescription(cmd: Command): void {
  const text = cmd.description();
  if (text) cmd.description(text.replace(/([^\n])\n(?!\n)/g, '$1 '));
}

/**
 * Commander checks required options before the number of arguments, so `deltaimg diff rootA`
 * would complain about --out, not the missing DST_ROOT. Required options are checked here
 * instead, in a preAction hook, which runs after the arguments were checked.
 */
function checkRequiredOptionsAfterArguments(cmd: Command): void {
  const required: Option[] = cmd.options.filter((o) => o.mandatory);
  if (required.length === 0) return;
  for (const o of required) o.makeOptionMandatory(false);
  cmd.hook('preAction', (_self, action) => {
    for (const o of required) {
      if (action.getOptionValue(o.attributeName()) === undefined) {
        action.error(`error: required option '${o.flags}' not specified`, {
          code: 'commander.missingMandatoryOptionValue',
          exitCode: USAGE_EXIT,
        });
      }
    }
  });
}

/** The exit code for an error commander threw (through exitOverride): 0 for --help/--version. */
export function commanderExitCode(err: unknown): number | undefined {
  if (!(err instanceof CommanderError)) return undefined;
  return err.exitCode === 0 ? 0 : USAGE_EXIT;
}
