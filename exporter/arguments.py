"""The command line's shared spellings: a verb's parser with its `--config`, the checklist filter
and the API token's variable, so every verb that takes one spells it the same way."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from exporter.completion import Parser, Verbs


def verb(
    verbs: Verbs, name: str, run: Callable[[argparse.Namespace], int], config: bool, **kw: Any
) -> Parser:
    """The parser of verb `name`, which runs `run`; with `config`, its required --config."""
    parser = verbs.add_parser(name, **kw)
    if config:
        parser.add_argument("--config", required=True, help="config YAML file")
    parser.set_defaults(run=run)
    return parser


def checklists(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checklist", action="append", help="only this checklist (repeatable)")


def token_env(parser: argparse.ArgumentParser, help: str) -> None:
    """--token-env: the environment variable that holds the API token (READINESS_TOKEN)."""
    parser.add_argument("--token-env", default="READINESS_TOKEN", metavar="NAME", help=help)
