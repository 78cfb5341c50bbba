"""Reads config YAML into typed models; every error names FILE:LINE, the item and a fix."""

from __future__ import annotations

import contextlib
import difflib
import gc
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, create_model

from exporter.config import DUPLICATE, NAME_PATTERN, Config, ExporterSettings, Item
from exporter.dependencies import graph_issues
from exporter.issues import ConfigError as ConfigError
from exporter.issues import ConfigIssue as ConfigIssue
from exporter.probes import PROBES
from exporter.redact import MIN_SECRET_LENGTH, SECRET_NAME, has_url_password, secret_key
from exporter.web.auth import Tokens

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}")
_DOLLARS = re.compile(r"\$\$")

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    path: str
    secrets: frozenset[str] = field(default_factory=frozenset)
    """Values that must never be shown: env values of secret-named variables, header values."""


# libyaml's scanner, when PyYAML has it: ~15x faster on a 10,000-item config (bench/README.md);
# the nodes and their marks are the same.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_KNOWN_SCALAR_TAGS = frozenset(t for t in yaml.SafeLoader.yaml_constructors if t is not None)
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})

MAX_DOCUMENT_BYTES = 16 * 2**20
"""A config larger than this is refused before parsing (a 10,000-item file is ~2 MiB)."""
MAX_ALIAS_VALUES = 10_000
"""Values that aliases may add to the data: sharing a block is fine, a 251-byte alias bomb
that expands to a billion values is an error, found after a few milliseconds."""
RUN_FACTS = ("duration",)
"""Facts the runner adds to every probed kind's run."""
MAX_DEPTH = 64
"""Nesting deeper than any config needs; deeper would exhaust the builder's recursion."""


class _Unreadable(Exception):
    """YAML that cannot become config data at all (an alias bomb, a bad tag): one issue."""

    def __init__(self, line: int | None, message: str, path: Path_ = ()) -> None:
        super().__init__(message)
        self.line = line
        self.path = path
        self.message = message


@dataclass
class _Reader:
    """Builds plain data from YAML nodes, remembering the line of every path."""

    file: str
    marks: dict[Path_, int] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    substituted: dict[str, str] = field(default_factory=dict)
    """Each value read from the environment -> the `${VAR}` it came from, for messages."""
    unresolved: list[tuple[Path_, str]] = field(default_factory=list)
    """Where a ${VAR} was not set: reported once, with no follow-on errors at that place."""
    unconfigured: list[tuple[Path_, str]] = field(default_factory=list)
    """Where a required placeholder `${VAR:?EXAMPLE}` was not set, and its variable: the item
    there is unconfigured (never run) rather than the config wrong."""
    unset_ok: bool = False
    """`check --url`: a variable the daemon's environment sets may be unset here, in a probe's
    settings or the `exporter:` block (what the daemon runs with, not what is judged here)."""
    unset: list[Path_] = field(default_factory=list)
    """With `unset_ok`: where a variable was not set (its value taken as empty)."""
    _scalars: yaml.SafeLoader = field(default_factory=lambda: yaml.SafeLoader(""))
    _open: set[int] = field(default_factory=set)
    """The collection nodes being built (their ids): an alias to one of them is a cycle."""
    _built: set[int] = field(default_factory=set)
    """Collection nodes built once already: meeting one again is an alias expansion."""
    _expanding: int = 0
    _alias_values: int = 0
    _alias_line: int | None = None
    root: yaml.Node | None = None

    def build(self, node: yaml.Node, path: Path_) -> Any:
        line = node.start_mark.line + 1
        self.marks.setdefault(path, line)
        if isinstance(node, yaml.CollectionNode):
            if len(path) > MAX_DEPTH:
                raise _Unreadable(line, f"nested deeper than {MAX_DEPTH} levels", path)
            if node.tag not in _COLLECTION_TAGS:
                raise _Unreadable(line, f"unsupported tag {_short_tag(node.tag)}: remove it", path)
            if id(node) in self._open:
                raise _Unreadable(
                    self.line_of(path),
                    "an alias refers to the value that contains it: a value cannot hold itself",
                )
            again = id(node) in self._built
            if again and not self._expanding:
                # The node's own mark is its anchor's; the alias sits in the parent.
                self._alias_line = self.line_of(
                    path[:-1] if path and isinstance(path[-1], int) else path
                )
            self._built.add(id(node))
            self._open.add(id(node))
            self._expanding += again
            try:
                return self._collection(node, path)
            finally:
                self._open.discard(id(node))
                self._expanding -= again
        if self._expanding:
            self._count_alias_value()
        # Most scalars are plain strings: taken as they are, without the constructor's dispatch.
        if node.tag == _STR:
            value = node.value
        else:
            try:
                value = self._scalars.construct_object(node, deep=True)
            except Exception:  # PyYAML's constructors raise what they meet (KeyError, ...)
                raise _Unreadable(line, _bad_scalar(node), path) from None
        if isinstance(value, str):
            return self._substitute(value, path)
        return value

    def _count_alias_value(self) -> None:
        """Aliases may repeat a part of the file, not multiply it (an alias bomb): the values
        built through them are counted and bounded."""
        self._alias_values += 1
        if self._alias_values > MAX_ALIAS_VALUES:
            raise _Unreadable(
                self._alias_line,
                f"too many aliases: expanding them builds more than {MAX_ALIAS_VALUES} values; "
                "write the repeated parts out",
            )

    def _collection(self, node: yaml.CollectionNode, path: Path_) -> Any:
        if self._expanding:
            self._count_alias_value()
        if isinstance(node, yaml.MappingNode):
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:
                    self.issue(
                        key_node.start_mark.line + 1,
                        "YAML merge keys (<<) are not supported: write the keys out",
                        self.item_at(path),
                    )
                    continue
                # Each key's own line, for an error in the key itself.
                self.marks[(*path, "<key>")] = key_node.start_mark.line + 1
                key = self.build(key_node, (*path, "<key>"))
                if not isinstance(key, str | int):
                    self.issue(key_node.start_mark.line + 1, f"a key must be a string, got {key!r}")
                    continue
                if key == "<<":
                    self.issue(
                        key_node.start_mark.line + 1, "YAML merge keys (<<) are not supported"
                    )
                    continue
                if key in mapping:
                    self.issue(
                        key_node.start_mark.line + 1, f"duplicate key '{key}'", self.item_at(path)
                    )
                self.marks[(*path, key)] = key_node.start_mark.line + 1
                mapping[key] = self.build(value_node, (*path, key))
            return mapping
        return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]

    def _substitute(self, text: str, path: Path_) -> str:
        # user:${PASSWORD}@ is the way to write it; only a password left in the text is flagged.
        if has_url_password(_env_sub("", text)):
            self.unresolved.append(
                (
                    path,
                    "a password is written in the file: put it in the "
                    "environment and write ${VAR} instead",
                )
            )

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, operator, default = match.group(1), match.group(2), match.group(3)
            value = os.environ.get(name)
            if operator == ":?" and _is_item(path) and not _in_probe(path):
                # Only a target may wait for its variable: an example id, severity or
                # depends_on would silently become the item's own.
                field = "a key" if path[-1] == "<key>" else _field_path(path)
                self.unresolved.append(
                    (
                        path,
                        f"{field}: ${{{name}:?...}} (a required placeholder) belongs in the"
                        " probe's settings only: write the value here, or ${VAR} / ${VAR:-default}",
                    )
                )
                return default or ""
            if not value and operator == ":?" and _in_probe(path):
                # Set but empty is not set (as the shell's ${VAR:?}): `${LOG_DIR:?...}/*.log`
                # must not probe /*.log. The example only lets the rest of the item be
                # checked; it is never probed.
                self.unconfigured.append((path, name))
                return default or ""
            if value is None:
                if (default is None or operator == ":?") and self.unset_ok and _daemons(path):
                    self.unset.append(path)
                    return default or ""
                if default is None or operator == ":?":
                    self.unresolved.append(
                        (
                            path,
                            f"environment variable {name} is not set "
                            f"(set it, or give a default: ${{{name}:-value}})",
                        )
                    )
                    return ""
                value = default
            if SECRET_NAME.search(name) or (path and secret_key(str(path[-1]))):
                self.secrets.add(value)
            if len(value) >= MIN_SECRET_LENGTH:
                self.substituted[value] = f"${{{name}}}"
            return value

        return _env_sub(replace, text)

    def issue(self, line: int | None, message: str, item: str | None = None) -> None:
        """Records a problem found at `line` (of `item`); every check of the file reports
        through here, and the load fails with all of them at the end."""
        self.issues.append(ConfigIssue(self.file, line, item, message))

    def item_at(self, path: Path_) -> str | None:
        """The id of the item at or above `path`, read from the nodes (before any data exists)."""
        if not _is_item(path) or self.root is None:
            return None
        node: yaml.Node | None = self.root
        for part in path[:6]:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if part < len(node.value) else None
            else:
                return None
        ids = (
            [v for k, v in node.value if k.value == "id"]
            if isinstance(node, yaml.MappingNode)
            else []
        )
        if ids and isinstance(ids[0], yaml.ScalarNode):
            return str(ids[0].value)
        return f"#{path[5] + 1}" if isinstance(path[5], int) else None

    def shown(self) -> list[ConfigIssue]:
        """The issues as they may be printed: a value that came from the environment (it may
        be a secret whose variable's name does not say so) appears as its `${VAR}`."""
        values = sorted(self.substituted, key=len, reverse=True)

        def hide(text: str) -> str:
            for value in values:
                text = text.replace(value, self.substituted[value])
            return text

        return [
            replace(i, message=hide(i.message), item=i.item and hide(i.item)) for i in self.issues
        ]

    def line_of(self, loc: Path_) -> int | None:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.marks:
                return self.marks[loc[:end]]
        return None


def _env_sub(by: str | Callable[[re.Match[str]], str], text: str) -> str:
    """`_ENV_REF.sub`, in linear time: past the last `}` only `$$` can match, and searching
    there would rescan the rest of the text from every `${NAME:-` (quadratic)."""
    end = text.rfind("}") + 1
    return _ENV_REF.sub(by, text[:end]) + _DOLLARS.sub(by, text[end:])


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _bad_scalar(node: yaml.Node) -> str:
    tag = _short_tag(node.tag)
    if node.tag in _KNOWN_SCALAR_TAGS:
        return f"{node.value!r} is not a valid {tag}"
    return f"unsupported tag {tag}: remove it"


def load_config(
    path: str | os.PathLike[str], tokens: bool = False, unset_ok: bool = False
) -> LoadedConfig:
    """Loads and validates a config file, raising ConfigError with every issue found. With
    `tokens`, as `serve` needs: every API token's variable holds a usable secret; `unset_ok`:
    as `parse_config`."""
    file = str(path)
    try:
        # One byte past the limit is enough to refuse it: a huge file is never read whole.
        with Path(file).open("rb") as stream:
            data = stream.read(MAX_DOCUMENT_BYTES + 1)
        if len(data) > MAX_DOCUMENT_BYTES:
            raise ConfigError([_too_large(file)])
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(file, None, None, f"cannot read config: {exc}")]) from None
    with collector_paused():
        return parse_config(text, file, tokens, unset_ok)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic collector off meanwhile: loading a 10,000-item file allocates ~200,000
    objects that all live on (nodes, then data, then models), and each collection the
    allocations trigger scans them again, ~60% of the load's CPU (bench/README.md, 20).
    Nothing it would collect is made: the node tree is freed by reference counting."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _too_large(file: str) -> ConfigIssue:
    limit = MAX_DOCUMENT_BYTES // 2**20
    return ConfigIssue(file, None, None, f"larger than {limit} MiB: split it, or trim it")


def parse_config(
    text: str, file: str = "<config>", tokens: bool = False, unset_ok: bool = False
) -> LoadedConfig:
    """`unset_ok` (`check --url`, where the daemon probes): a variable not set here, in a
    probe's settings or the `exporter:` block, is no error; that probe's settings are kept
    unchecked where the value is missing, and `${VAR:?EXAMPLE}` leaves no item unconfigured
    (the daemon, whose environment counts, says whether it is)."""
    reader = _Reader(file, unset_ok=unset_ok)
    if len(text) > MAX_DOCUMENT_BYTES:
        raise ConfigError([_too_large(file)])
    try:
        root = yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError([ConfigIssue(file, line, None, f"invalid YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        # The reader's errors (a NUL or other control character) carry a position, not a mark.
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        reason = getattr(exc, "reason", None) or exc
        raise ConfigError([ConfigIssue(file, line, None, f"invalid YAML: {reason}")]) from None
    if root is None:
        raise ConfigError([ConfigIssue(file, 1, None, "the file is empty: add checklists:")])
    try:
        reader.root = root
        data = reader.build(root, ())
    except _Unreadable as exc:
        raise ConfigError(
            [ConfigIssue(file, exc.line, reader.item_at(exc.path), exc.message)]
        ) from None
    # The node tree of a 10,000-item file is ~20 MB: freed before validation allocates the
    # models, so they reuse its memory instead of growing the heap past it (bench/README.md).
    del root
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigIssue(file, 1, None, "the top level must be a mapping with checklists:")]
        )

    for where, message in reader.unresolved:
        reader.issue(reader.line_of(where), message, _item_id(where, data))
    if reader.unset:
        _without_unset(data, reader.unset)
    settings = _settings(data.get("exporter", {}), reader)
    if settings is not None and tokens:
        _check_tokens(settings, reader)
    body = {k: v for k, v in data.items() if k != "exporter"}
    config: Config | None = None
    try:
        config = Config.model_validate({**body, "exporter": settings or ExporterSettings()})
    except ValidationError as exc:
        _report(exc, (), data, reader)
    if config is not None:
        _check_facts(config, reader)
        if not unset_ok:
            _mark_unconfigured(config, reader)
        _check_dependencies(config, reader)
    if reader.issues or config is None or settings is None:
        raise ConfigError(reader.shown())
    return LoadedConfig(config, file, frozenset(reader.secrets | config.secrets(os.environ)))


def _daemons(path: Path_) -> bool:
    """A place whose variables only the daemon needs: a probe's settings, the `exporter:`
    block (`check --url` judges items; it neither probes nor serves)."""
    if len(path) >= 2 and path[0] == "exporter":
        return True
    return _in_probe(path)


def _in_probe(path: Path_) -> bool:
    """Inside an item's probe settings (`http: {...}`), where placeholders belong."""
    return _is_item(path) and len(path) >= 7 and path[6] in PROBES


def _without_unset(data: dict[str, Any], unset: list[Path_]) -> None:
    """`check --url`: the `exporter:` settings with an unset variable fall back to their
    defaults; a probe's settings with one keep every other field, checked (the daemon holds
    the values: the spec is judged by, never probed)."""
    exporter = data.get("exporter")
    blocks: dict[Path_, set[str]] = {}
    for path in unset:
        if path[0] == "exporter":
            if isinstance(exporter, dict):
                exporter.pop(path[1], None)
        elif len(path) > 7:
            blocks.setdefault(path[:7], set()).add(str(path[7]))
    for block_path, fields in blocks.items():
        _, ci, _, si, _, ii, kind = block_path
        item = data["checklists"][ci]["sections"][si]["items"][ii]
        block = item.get(kind)
        if isinstance(block, dict):
            partial = _partial_spec(PROBES[str(kind)].Spec, block, fields)
            if partial is not None:
                item[kind] = partial


def _partial_spec(spec: type[BaseModel], block: dict[str, Any], unset: set[str]) -> Any:
    """`block` as a `spec` without its `unset` fields (required or not), the others validated;
    None when they are not valid (the block is then reported as any other)."""
    if not unset <= set(spec.model_fields):
        return None
    kept = {k: v for k, v in block.items() if k not in unset}
    optional: dict[str, Any] = {name: (Any, None) for name in unset}
    partial = create_model(f"Partial{spec.__name__}", __base__=spec, **optional)
    try:
        checked = partial.model_validate(kept)
    except (ValidationError, TypeError, AttributeError):  # a kind's checks that needed them
        return None
    return spec.model_construct(set(kept), **{k: getattr(checked, k) for k in kept})


def _settings(raw: Any, reader: _Reader) -> ExporterSettings | None:
    if not isinstance(raw, dict):
        reader.issue(reader.line_of(("exporter",)), "exporter: must be a mapping")
        return None
    try:
        return ExporterSettings.load(raw, os.environ)
    except ValidationError as exc:
        _report(exc, ("exporter",), {"exporter": raw}, reader)
    except ValueError as exc:
        reader.issue(reader.line_of(("exporter",)), str(exc))
    return None


def _check_facts(config: Config, reader: _Reader) -> None:
    """Every condition names a fact its kind gives: a typo fails here, not at every run."""
    for ci, checklist in enumerate(config.checklists):
        for si, section in enumerate(checklist.sections):
            for ii, item in enumerate(section.items):
                for ei, condition in enumerate(item.expect or ()):
                    problem = unknown_fact(condition.fact, item.kind)
                    if problem is not None:
                        where = ("checklists", ci, "sections", si, "items", ii, "expect", ei)
                        reader.issue(reader.line_of(where), f"expect[{ei}]: {problem}", item.id)


def _check_dependencies(config: Config, reader: _Reader) -> None:
    """`depends_on` names items that exist, and never loops back."""
    for issue in graph_issues(config):
        ci, si, ii, di = issue.where
        where = ("checklists", ci, "sections", si, "items", ii, "depends_on", di)
        reader.issue(reader.line_of(where), issue.message, issue.item)


def _mark_unconfigured(config: Config, reader: _Reader) -> None:
    """Tells each item the required placeholders (`${VAR:?EXAMPLE}`) it uses that are unset."""
    needs: dict[tuple[int, int, int], list[str]] = {}
    for path, name in reader.unconfigured:
        ci, si, ii = int(path[1]), int(path[3]), int(path[5])
        names = needs.setdefault((ci, si, ii), [])
        if name not in names:
            names.append(name)
    for (ci, si, ii), names in needs.items():
        config.checklists[ci].sections[si].items[ii].needs_variables(tuple(names))


def unknown_fact(fact: str, kind: str) -> str | None:
    """Why `kind` never gives `fact`, with the nearest name it does give; None when it may."""
    own = PROBES[kind].FACTS
    declared = tuple(dict.fromkeys((*own, *RUN_FACTS))) if own else ()
    families = [name.removesuffix("*") for name in declared if name.endswith(".*")]
    if fact in declared or any(fact.startswith(f) and len(fact) > len(f) for f in families):
        return None
    if not declared:
        return f"a {kind} item has no facts to judge: remove its expect"
    names = [n for n in declared if not n.endswith(".*")]
    head, dot, tail = fact.partition(".")
    close = difflib.get_close_matches(fact, names, n=1)
    if tail:
        close += [f"{f}{tail}" for f in difflib.get_close_matches(head + dot, families, n=1)]
    if close:
        return f"unknown fact '{fact}' for {kind} (did you mean '{close[0]}'?)"
    return f"unknown fact '{fact}' for {kind}: it gives {', '.join(declared)}"


def _check_tokens(settings: ExporterSettings, reader: _Reader) -> None:
    """The rule `serve` applies to API tokens (auth.Tokens), with the line of each token."""
    for index, token in enumerate(settings.api_tokens):
        try:
            Tokens.from_config([token], os.environ)
        except ValueError as exc:
            reader.issue(reader.line_of(("exporter", "api_tokens", index, "token_env")), str(exc))


def _report(exc: ValidationError, prefix: Path_, data: dict[str, Any], reader: _Reader) -> None:
    unresolved = {where for where, _ in reader.unresolved}
    for error in exc.errors(include_url=False):
        loc = _data_path((*prefix, *error["loc"]), data)
        if any(loc[: len(where)] == where for where in unresolved):
            continue  # already reported: the ${VAR} there was not set
        item = _item_id(loc, data)
        # A repeated name is its own sentence, at the repeat's line.
        within = _field_path(loc) if error["type"] != DUPLICATE else ""
        message = _message(error, loc)
        reader.issue(reader.line_of(loc), f"{within}: {message}" if within else message, item)


def _data_path(loc: tuple[Any, ...], data: Any) -> Path_:
    """The part of a pydantic error location that exists as keys in the YAML data (drops
    pydantic's internal union and validator tags), plus one missing last key."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif (
            isinstance(part, str)
            and isinstance(node, dict)
            and not part.startswith(("function-", "union"))
        ):
            path.append(part)  # a missing or extra key: keep it for the message
            break
        else:
            continue
        path.append(part)
    return tuple(path)


def _item_id(loc: Path_, data: dict[str, Any]) -> str | None:
    if len(loc) >= 6 and loc[0] == "checklists" and loc[2] == "sections" and loc[4] == "items":
        try:
            raw = data["checklists"][loc[1]]["sections"][loc[3]]["items"][loc[5]]
        except (KeyError, IndexError, TypeError):
            return None
        ident = raw.get("id") if isinstance(raw, dict) else None
        return str(ident) if ident else f"#{int(loc[5]) + 1}"
    return None


def _field_path(loc: Path_) -> str:
    """`http.url` or `expect[1]` inside an item; `exporter.listen`, `checklists[0].name` outside."""
    rest = loc[6:] if _is_item(loc) else loc
    text = ""
    for part in rest:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


DEPENDS_ON_FORM = "ITEM or CHECKLIST/ITEM (e.g. [postgres-up] or [db/postgres-up])"


def _is_item(loc: Path_) -> bool:
    return len(loc) >= 6 and loc[0] == "checklists" and loc[4] == "items"


def _message(error: Any, loc: Path_) -> str:
    kind = error["type"]
    message: str = error["msg"]
    if kind == "extra_forbidden":
        guess = difflib.get_close_matches(str(loc[-1]), _known_fields(), n=1)
        hint = f" (did you mean '{guess[0]}'?)" if guess else ""
        return f"unknown field{hint}"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        got = error.get("input")
        if error["ctx"]["pattern"] == NAME_PATTERN:
            return (
                f"{got!r} is not a valid name: use lowercase letters, digits, '-' and '_', "
                "starting with a letter or digit (e.g. stock-collector)"
            )
        if loc and loc[-1] == "listen":
            return f"{got!r} is not host:port (e.g. 127.0.0.1:9840 or [::1]:9840)"
        if len(loc) >= 2 and loc[-2] == "depends_on":
            return f"{got!r} is not {DEPENDS_ON_FORM}"
    if loc and loc[-1] == "depends_on" and kind == "tuple_type":
        return f"expected a list of {DEPENDS_ON_FORM}"
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _known_fields() -> list[str]:
    models: list[type[BaseModel]] = [Item, ExporterSettings, *(m.Spec for m in PROBES.values())]
    from exporter.config import Checklist, Section

    models += [Checklist, Section]
    return sorted({name for model in models for name in model.model_fields})
