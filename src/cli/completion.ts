/**
 * `deltaimg completion bash|zsh|fish`: shell completion scripts generated from the command tree
 * itself (verbs, their subcommands and options), so they cannot drift from the CLI. Arguments
 * complete as file names. zsh uses the bash script through bashcompinit.
 */
import type { Command } from 'commander';
import { DeltaimgError } from '../util/errors.js';

interface Node {
  /** Space-separated verbs from the top, "" for deltaimg itself. */
  path: string;
  subcommands: { name: string; summary: string }[];
  options: { long: string; short?: string; summary: string; takesValue: boolean }[];
}

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .summary('print a shell completion script (bash, zsh or fish)')
    .argument('<SHELL>', `one of ${SHELLS.join(', ')}`)
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  source <(deltaimg completion bash)                                   # this shell; add to ~/.bashrc to keep it\n' +
        '  deltaimg completion zsh > "${fpath[1]}/_deltaimg"                    # or: source <(deltaimg completion zsh)\n' +
        '  deltaimg completion fish > ~/.config/fish/completions/deltaimg.fish\n',
    )
    .action((shell: string) => {
      const known = SHELLS.find((s) => s === shell);
      if (!known) throw new DeltaimgError('USAGE', `completion: unknown shell "${shell}"; use one of ${SHELLS.join(', ')}`);
      process.stdout.write(completionScript(program, known));
    });
}

export function completionScript(program: Command, shell: Shell): string {
  const nodes = commandTree(program);
  if (shell === 'fish') return fishScript(nodes);
  const bash = bashScript(nodes);
  return shell === 'bash'
    ? bash
    : `#compdef deltaimg
# deltaimg completion for zsh (the bash completion through bashcompinit): source <(deltaimg completion zsh)
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit -u; }
autoload -U +X bashcompinit && bashcompinit
${bash}`;
}

function commandTree(program: Command): Node[] {
  const nodes: Node[] = [];
  // Help's own view: hidden verbs and options left out, --help and --version in.
  const help = program.createHelp();
  const walk = (cmd: Command, path: string): void => {
    const subs = help.visibleCommands(cmd).filter((c) => c.name() !== 'help');
    nodes.push({
      path,
      subcommands: subs.map((c) => ({ name: c.name(), summary: c.summary() || c.description() })),
      options: help
        .visibleOptions(cmd)
        .filter((o) => o.long)
        .map((o) => ({
          long: o.long!,
          ...(o.short ? { short: o.short } : {}),
          summary: o.description,
          takesValue: o.required || o.optional,
        })),
    });
    for (const sub of subs) walk(sub, path ? `${path} ${sub.name()}` : sub.name());
  };
  walk(program, '');
  return nodes;
}

/** A single-quoted shell word. */
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function bashScript(nodes: Node[]): string {
  const cases = (pick: (n: Node) => string[]) =>
    nodes
      .map((n) => [n, pick(n)] as const)
      .filter(([, words]) => words.length > 0)
      .map(([n, words]) => `    ${quote(n.path)}) echo ${quote(words.join(' '))} ;;`)
      .join('\n');
  const valued = [
    ...new Set(nodes.flatMap((n) => n.options.filter((o) => o.takesValue).flatMap((o) => [o.long, ...(o.short ? [o.short] : [])]))),
  ];
  return `# deltaimg completion for bash: source <(deltaimg completion bash)
_deltaimg_subcommands() {
  case "$1" in
${cases((n) => n.subcommands.map((s) => s.name))}
  esac
}
_deltaimg_options() {
  case "$1" in
${cases((n) => n.options.flatMap((o) => [o.long, ...(o.short ? [o.short] : [])]))}
  esac
}
_deltaimg() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" path="" word i subs
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -* ]] && continue
    subs=" $(_deltaimg_subcommands "$path") "
    [[ "$subs" == *" $word "* ]] && path="\${path:+$path }$word"
  done
  case " ${valued.join(' ')} " in
    *" $prev "*) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  subs="$(_deltaimg_subcommands "$path")"
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_deltaimg_options "$path")" -- "$cur"))
  elif [[ -n "$subs" ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _deltaimg deltaimg
`;
}

function fishScript(nodes: Node[]): string {
  const subcases = nodes
    .filter((n) => n.subcommands.length > 0)
    .map(
      (n) =>
        `    case ${quote(n.path)}\n${n.subcommands.map((s) => `      printf '%s\\t%s\\n' ${quote(s.name)} ${quote(oneLine(s.summary))}`).join('\n')}`,
    )
    .join('\n');
  const options = nodes.flatMap((n) =>
    n.options.map(
      (o) =>
        `complete -c deltaimg -n ${quote(`__deltaimg_at ${quote(n.path)}`)} -l ${o.long.replace(/^--/, '')}${o.short ? ` -s ${o.short.replace(/^-/, '')}` : ''}${o.takesValue ? ' -r' : ''} -d ${quote(oneLine(o.summary))}`,
    ),
  );
  return `# deltaimg completion for fish: deltaimg completion fish > ~/.config/fish/completions/deltaimg.fish
function __deltaimg_subcommands
  switch "$argv[1]"
${subcases}
  end
end
function __deltaimg_path
  set -l path
  for word in (commandline -opc)[2..-1]
    string match -q -- '-*' $word; and continue
    if contains -- $word (__deltaimg_subcommands "$path" | string replace -r '\\t.*' '')
      set path (string join ' ' $path $word)
    end
  end
  echo "$path"
end
function __deltaimg_at
  set -l path (__deltaimg_path)
  test "$path" = "$argv[1]"
end
function __deltaimg_has_subcommands
  set -l path (__deltaimg_path)
  test -n "$(__deltaimg_subcommands "$path")"
end
complete -c deltaimg -f -n __deltaimg_has_subcommands -a '(__deltaimg_subcommands (__deltaimg_path))'
${options.join('\n')}
`;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
