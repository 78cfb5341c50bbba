"""Shell completion scripts, written from the argument parser itself, so a new verb or flag
completes without editing a script by hand."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from typing import Any

PROG = "readiness-exporter"

# Options whose value is a path: the shell completes file names after them.
_FILE_OPTIONS = ("--config", "-o", "--output", "--update", "--web.config.file")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that keeps what was added to it, its verbs and its arguments: argparse
    has no public walk of a parser, and completion is written from this one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.verbs: dict[str, Parser] = {}
        self.arguments: list[argparse.Action] = []  # before __init__, which adds --help
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.arguments.append(action)
        return action

    def add_verbs(self, **kwargs: Any) -> Verbs:
        """add_subparsers, whose parsers are kept in `verbs` (by name) as they are added."""
        return Verbs(self.add_subparsers(parser_class=Parser, **kwargs).add_parser, self.verbs)


class Verbs:
    """The one method of argparse's subparsers object the CLI uses: add_parser."""

    def __init__(self, add: Callable[..., Parser], verbs: dict[str, Parser]) -> None:
        self._add, self._verbs = add, verbs

    def add_parser(self, name: str, **kwargs: Any) -> Parser:
        verb = self._add(name, **kwargs)
        self._verbs[name] = verb
        return verb


def _options(verb: Parser) -> tuple[list[str], dict[str, list[str]]]:
    """The verb's flags, and the fixed choices of those (and of positionals) that have some."""
    flags: list[str] = []
    choices: dict[str, list[str]] = {}
    for action in verb.arguments:
        flags += action.option_strings
        if action.choices is not None:
            for name in action.option_strings or [""]:
                choices[name] = [str(c) for c in action.choices]
    return flags, choices


def script(parser: Parser, shell: str) -> str:
    bash = _bash(parser)
    if shell == "zsh":
        # zsh runs bash completion functions through bashcompinit: one script for both shells.
        return f"#compdef {PROG}\nautoload -U +X bashcompinit && bashcompinit\n{bash}"
    return bash


def _bash(parser: Parser) -> str:
    verbs = parser.verbs
    cases = []
    for name, verb in verbs.items():
        flags, choices = _options(verb)
        positional = choices.get("", [])
        cases.append(
            f"        {name})\n"
            f'            case "$prev" in\n'
            + "".join(
                f"            {shlex.quote(flag)}) "
                f'COMPREPLY=($(compgen -W {shlex.quote(" ".join(words))} -- "$cur")); return;;\n'
                for flag, words in choices.items()
                if flag
            )
            + f"            {'|'.join(f for f in _FILE_OPTIONS if f in flags) or '--no-such-flag'})"
            ' COMPREPLY=($(compgen -f -- "$cur")); return;;\n'
            "            esac\n"
            f"            words={shlex.quote(' '.join(flags + positional))}"
            + ("; fixed=1" if positional else "")
            + ";;\n"
        )
    verb_names = " ".join(verbs)
    return (
        f"# {PROG} completion for bash: source it, or put it in"
        f" /etc/bash_completion.d/{PROG}\n"
        f"_readiness_exporter() {{\n"
        f'    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"'
        f' verb="" words="" fixed="" i\n'
        f"    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        f'        case "${{COMP_WORDS[i]}}" in -*) ;; *) verb="${{COMP_WORDS[i]}}"; break;; esac\n'
        f"    done\n"
        f'    case "$verb" in\n'
        f'        "") words={shlex.quote(verb_names + " --help --version")};;\n'
        + "".join(cases)
        + "    esac\n"
        + '    if [[ "$cur" == -* || -z "$verb" || -n "$fixed" ]]; then\n'
        + '        COMPREPLY=($(compgen -W "$words" -- "$cur"))\n'
        + "    else\n"
        + '        COMPREPLY=($(compgen -f -- "$cur"))\n'
        + "    fi\n"
        + "}\n"
        + f"complete -o filenames -F _readiness_exporter {PROG}\n"
    )
