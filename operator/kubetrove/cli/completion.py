"""A bash completion script generated from the argument parser, so it never drifts from the commands."""

from __future__ import annotations

import argparse


def _commands(top: argparse.ArgumentParser) -> dict[str, list[str]]:
    for action in top._actions:  # argparse keeps subparsers here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return {
                name: sorted(o for a in sub._actions for o in a.option_strings if o.startswith("--"))
                for name, sub in action.choices.items()
            }
    return {}


def bash_completion(top: argparse.ArgumentParser) -> str:
    """``source <(kubectl trove completion bash)``: commands, then each command's flags.

    kubectl (1.26+) completes plugin arguments through an executable named
    ``kubectl_complete-trove``; this script registers the same words for ``kubectl-trove``.
    """
    commands = _commands(top)
    cases = "\n".join(f'    {name}) opts="{" ".join(flags)}" ;;' for name, flags in sorted(commands.items()))
    return f"""# bash completion for kubectl trove (generated)
_kubectl_trove() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" cmd="" w opts
  for w in "${{COMP_WORDS[@]:1}}"; do case "$w" in -*) ;; *) cmd="$w"; break ;; esac; done
  if [ -z "$cmd" ] || [ "$cmd" = "$cur" ]; then
    COMPREPLY=($(compgen -W "{" ".join(sorted(commands))}" -- "$cur")); return
  fi
  case "$cmd" in
{cases}
    *) opts="" ;;
  esac
  COMPREPLY=($(compgen -W "$opts --namespace --context --kubeconfig" -- "$cur"))
}}
complete -F _kubectl_trove kubectl-trove"""
