"""The `readiness-exporter` command: serve, check, validate, attest, import, report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from exporter import __version__, audit_cli
from exporter.arguments import checklists, token_env, verb
from exporter.clock import SystemClock
from exporter.completion import Parser
from exporter.results import ItemKey, ItemState
from exporter.shard import ALL, Shard

# What a verb needs is imported inside it: `--version`, `--help` and a usage error answer in a
# few milliseconds, and `validate` never loads the web server or the Markdown parser.
if TYPE_CHECKING:
    import socket

    import uvicorn

    from exporter.attestations import AttestationRequest
    from exporter.config import Config
    from exporter.evaluate import ChecklistView
    from exporter.history import Change
    from exporter.importing.importer import Imported
    from exporter.importing.update import Updated
    from exporter.loader import LoadedConfig
    from exporter.redact import Redactor
    from exporter.results import Attestation

# The exit codes of every verb (docs/cli.md: "Exit codes"): ok/ready, not ready, config or usage
# error, runtime or state error.
EXIT_READY, EXIT_NOT_READY, EXIT_CONFIG, EXIT_RUNTIME = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    code: int = args.run(args)
    return code


def build_parser() -> Parser:
    parser = Parser(
        prog="readiness-exporter",
        description="Turns a production-readiness checklist into live Prometheus gauges.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbs = parser.add_verbs(dest="command", metavar="COMMAND")

    serve = verb(verbs, "serve", cmd_serve, config=True, help="run the daemon")
    serve.add_argument("--listen", help="host:port, overrides exporter.listen")
    serve.add_argument(
        "--web.config.file",
        dest="web_config",
        metavar="FILE",
        help="TLS, Basic auth and response headers, in the exporter-toolkit format",
    )
    serve.add_argument(
        "--web.header-timeout",
        dest="header_timeout",
        type=_positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="close a connection that has not sent a request's headers within this (default 10)",
    )
    serve.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=_positive_count,
        metavar="N",
        help="client connections at once (default: what the open-files limit leaves after"
        " the probes' share, at most 4096)",
    )
    _add_shard(serve)

    check = verb(
        verbs, "check", cmd_check, config=True, help="run every probe once and print the result"
    )
    check.add_argument("--format", choices=["table", "json", "markdown", "junit"], default="table")
    checklists(check)
    check.add_argument(
        "--fail-under",
        type=_ratio,
        metavar="RATIO",
        help="also exit 1 when a checklist's score is below RATIO (0..1), ready or not",
    )
    check.add_argument(
        "--only-failing",
        action="store_true",
        help="show only the items that fail or lapsed (the verdict still counts every item)",
    )
    check.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the chosen format to FILE; the terminal gets one line per checklist",
    )
    check.add_argument(
        "--no-serve",
        action="store_true",
        help="do not serve the exporter's own endpoints during the run",
    )
    check.add_argument(
        "--url",
        metavar="URL",
        help="ask the daemon running at URL to run the checklists (POST /api/v1/runs) instead of"
        " probing from here; its token (attest role) is read from $READINESS_TOKEN",
    )
    token_env(check, "with --url: the environment variable holding the API token (READINESS_TOKEN)")
    _add_shard(check)

    validate = "check a config file and report every error"
    verb(verbs, "validate", cmd_validate, config=True, help=validate)

    attest = verb(
        verbs,
        "attest",
        cmd_attest,
        config=True,
        help="record that a person did a manual item (or, for item go-live, that a checklist"
        " went live)",
    )
    attest.add_argument("checklist", metavar="CHECKLIST")
    attest.add_argument("item", metavar="ITEM", help="a manual item's id, or go-live")
    attest.add_argument("--by", required=True, metavar="NAME", help="who did it")
    attest.add_argument("--note", default="", metavar="TEXT", help="what was done, a link")

    importer = verb(
        verbs,
        "import",
        cmd_import,
        config=False,
        help="turn a Markdown checklist (- [ ] items under headings) into config YAML",
    )
    importer.add_argument("checklist", metavar="CHECKLIST.md", help="the Markdown document")
    importer.add_argument("--name", help="the checklist's name (default: from the file name)")
    importer.add_argument(
        "-o", "--output", metavar="FILE", help="write here, not to stdout (never over a file)"
    )
    importer.add_argument(
        "--force", action="store_true", help="with -o: replace FILE even though it exists"
    )
    importer.add_argument(
        "--update",
        metavar="FILE",
        help="re-import into FILE, a config made by import and edited since: keeps the edits of"
        " every item whose id is still in the document, adds new items, lists removed ones",
    )
    importer.add_argument(
        "--prune",
        action="store_true",
        help="with --update: drop the removed items (default: kept in FILE, commented out)",
    )
    importer.add_argument(
        "--check-state",
        action="store_true",
        help="record the manual items ticked [x] as attested (by: import) in the config's state",
    )
    importer.add_argument(
        "--set",
        action="append",
        type=_assignment,
        default=[],
        metavar="NAME=VALUE",
        dest="values",
        help="fill a placeholder of the suggested probes, e.g. BASE_URL=https://api.example.com "
        "(repeatable; secrets go in the environment instead)",
    )

    report = verb(
        verbs,
        "report",
        cmd_report,
        config=True,
        help="the live checklist from the stored state, in the document's shape",
    )
    report.add_argument("--format", choices=["markdown", "html"], default="markdown")
    checklists(report)
    report.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")

    job = verb(
        verbs,
        "run",
        cmd_run,
        config=False,
        help="run a job and report it to a ping item: start, then success or fail with its exit"
        " code, duration and output tail; exits with the job's code",
        usage="readiness-exporter run --url URL [--token-env NAME] CHECKLIST ITEM -- COMMAND...",
    )
    job.add_argument("--url", required=True, help="the daemon, e.g. http://127.0.0.1:9840")
    token_env(job, "the environment variable holding the API token (attest role; READINESS_TOKEN)")
    job.add_argument("checklist", metavar="CHECKLIST")
    job.add_argument("item", metavar="ITEM", help="a ping item's id")
    job.add_argument("job", nargs=argparse.REMAINDER, metavar="-- COMMAND...")
    explain = verb(
        verbs,
        "explain",
        cmd_explain,
        config=True,
        help="one item: its probe, conditions with the last measured values, why it fails,"
        " its attestation and when it is due, from the stored state",
    )
    explain.add_argument(
        "target", metavar="CHECKLIST/ITEM", help="e.g. stock-collector/health-endpoint"
    )

    completion = verb(
        verbs, "completion", cmd_completion, config=False, help="print a shell completion script"
    )
    completion.add_argument("shell", choices=["bash", "zsh"])
    audit_cli.add_verbs(verbs)
    return parser


def _add_shard(verb: Parser) -> None:
    def shard(text: str) -> Shard:
        try:
            return Shard.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    verb.add_argument(
        "--shard",
        type=shard,
        default=os.environ.get("READINESS_SHARD") or ALL,
        metavar="I/N",
        help="run only the checklists that hash to shard I of N (default $READINESS_SHARD, or all)",
    )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds between 0 and 3600, e.g. 10")
    return value


def _positive_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1, e.g. 512")
    return value


def _load(
    path: str,
    tokens: bool = False,
    apart: bool = False,
    unset_ok: bool = False,
    serving: socket.socket | None = None,
) -> LoadedConfig | None:
    """The config, or None once its errors are printed; `apart` (serve) loads it in a forked
    child so the daemon does not keep the loading's peak memory (exporter/forkload.py),
    answering /health/live on `serving` meanwhile; `unset_ok` (check --url): variables only
    the daemon needs may be unset here."""
    from exporter.loader import ConfigError, load_config

    try:
        if apart:
            from exporter.forkload import load_config_apart

            loaded = load_config_apart(path, tokens, serving)
        else:
            loaded = load_config(path, tokens, unset_ok)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return None
    return loaded


def counted(n: int, noun: str) -> str:
    """`1 checklist`, `2 checklists`, `0 items`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def cmd_validate(args: argparse.Namespace) -> int:
    # What serve would refuse, validate refuses: API tokens whose variable is not set too.
    loaded = _load(args.config, tokens=True)
    if loaded is None:
        return EXIT_CONFIG
    config = loaded.config
    items = sum(len(s.items) for c in config.checklists for s in c.sections)
    checklists = counted(len(config.checklists), "checklist")
    print(f"{args.config}: OK ({checklists}, {counted(items, 'item')})")
    unconfigured = [
        i for c in config.checklists for s in c.sections for i in s.items if i.unconfigured
    ]
    if unconfigured:
        # Valid, but these items will not run: the next thing a new user needs to know.
        waiting: dict[str, int] = {}
        for item in unconfigured:
            for name in item.unconfigured:
                waiting[name] = waiting.get(name, 0) + 1
        print(
            f"  {counted(len(unconfigured), 'item')} {'is' if len(unconfigured) == 1 else 'are'}"
            " unconfigured (not run) until these are set: "
            + ", ".join(f"{name} ({counted(n, 'item')})" for name, n in waiting.items())
        )
    return EXIT_READY


def _following_listen(
    path: str,
    listen: str | None,
    tokens: bool = False,
    apart: bool = False,
    serving: socket.socket | None = None,
    tls: bool = False,
) -> LoadedConfig | None:
    """The config, its self-probes following the address this process listens on: a config
    that reaches the exporter at `${READINESS_SELF_URL:-...}` gets `http://` (`https://` with
    `tls`, as a web config serves it) + the address of --listen, READINESS_LISTEN or `listen:`
    (a wildcard host as loopback), unless the environment sets READINESS_SELF_URL itself."""
    loaded = _load(path, tokens, apart, serving=serving)
    if loaded is None or "READINESS_SELF_URL" in os.environ:
        return loaded
    host, port = (listen or loaded.config.exporter.listen).rsplit(":", 1)
    wildcard = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}  # noqa: S104 - read, not bound
    host = wildcard.get(host, host)
    scheme = "https" if tls else "http"
    os.environ["READINESS_SELF_URL"] = f"{scheme}://{host}:{port}"  # reloads read it too
    try:
        mentioned = "READINESS_SELF_URL" in Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        mentioned = False
    return _load(path, tokens, apart, serving=serving) if mentioned else loaded


def cmd_serve(args: argparse.Namespace) -> int:
    # /health/live while the config loads; not with a web config, whose TLS or basic auth the
    # early answers would not speak.
    bound = None if args.web_config else _listen_early(args.config, args.listen)
    try:
        return _serve(args, bound)
    finally:
        if bound is not None:
            bound[0].close()  # on every way out (uvicorn has closed it when it served)


def _serve(args: argparse.Namespace, bound: tuple[socket.socket, tuple[str, int]] | None) -> int:
    early = bound[0] if bound else None
    from exporter.loader import ConfigError

    web = None
    if args.web_config:  # first: whether it turns TLS on decides the self-probes' scheme
        from exporter.web.webconfig import load_web_config

        try:
            web = load_web_config(args.web_config)
        except ConfigError as exc:
            for issue in exc.issues:
                print(issue, file=sys.stderr)
            return EXIT_CONFIG
    tls = web is not None and web.tls_server_config is not None
    loaded = _following_listen(
        args.config, args.listen, tokens=True, apart=True, serving=early, tls=tls
    )
    if loaded is None:
        return EXIT_CONFIG
    if args.listen:
        loaded = _with_listen(loaded, args.listen)
    settings = loaded.config.exporter
    if bound is not None and bound[1] != (settings.host, settings.port):
        bound[0].close()  # the scan's hint was wrong: serve binds the configured address
        early = None
    import uvicorn

    from exporter import logs
    from exporter.daemon import Daemon, load_tokens
    from exporter.memory import release_large_blocks
    from exporter.serve import ListenError, run, web_app
    from exporter.web.serving import ConnectionGuard, connection_cap, raise_fd_limit, server_options
    from exporter.web.webconfig import uvicorn_tls

    try:
        tokens = load_tokens(loaded)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return EXIT_CONFIG
    guard = ConnectionGuard(
        args.header_timeout,
        args.max_connections or connection_cap(raise_fd_limit(), settings.max_concurrency),
    )
    release_large_blocks()  # before the daemon's threads start
    daemon = Daemon(loaded, tokens=tokens, shard=args.shard)
    logs.configure(settings.log_format, settings.log_level, daemon.redactor)
    server = uvicorn.Server(
        uvicorn.Config(
            guard.asgi(web_app(daemon, web)),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=10,
            server_header=False,
            **server_options(guard, uvicorn_tls(web)),
        )
    )
    from exporter.state import StateError

    try:
        # The event loop uvicorn's own run() would pick (uvloop when installed).
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(run(daemon, server, early))
    except StateError as exc:
        return _state_failed(exc)
    except ListenError as exc:
        print(exc, file=sys.stderr)
        return EXIT_RUNTIME
    return EXIT_READY


def _listen_early(path: str, listen: str | None) -> tuple[socket.socket, tuple[str, int]] | None:
    """The listen socket bound before the config is loaded, when its address is known
    without loading it (exporter/prelisten.py); None otherwise, and serve binds as before."""
    from exporter import prelisten

    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError):
        return None  # the loader says what is wrong with it
    address = prelisten.early_address(text, listen, os.environ)
    sock = prelisten.bind(*address) if address is not None else None
    return (sock, address) if sock is not None and address is not None else None


def _state_failed(exc: Exception) -> int:
    """A state that cannot be opened or written: one line naming it, exit 3."""
    from exporter.state import OutcomeUnknown, StoreUnavailable

    if isinstance(exc, OutcomeUnknown):
        print(f"outcome unknown, it may have been recorded: {exc}", file=sys.stderr)
    elif isinstance(exc, StoreUnavailable):
        print(f"not recorded: {exc}", file=sys.stderr)
    else:
        print(exc, file=sys.stderr)
    return EXIT_RUNTIME


def cmd_attest(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if loaded is None:
        return EXIT_CONFIG
    from pydantic import ValidationError

    from exporter import attestations, logs
    from exporter.redact import Redactor
    from exporter.state import StateError, StoreUnavailable

    # Whatever the verb prints or stores from here on is masked with this config's secrets.
    redactor = Redactor(loaded.secrets)
    logs.configure("console", "error", redactor)

    try:
        request = attestations.AttestationRequest(
            checklist=args.checklist, item=args.item, by=args.by, note=args.note
        )
        (recorded,) = asyncio.run(_attest(loaded.config, [request], redactor))
    except (ValidationError, attestations.Invalid, attestations.NotFound) as exc:
        print(redactor.text(f"{args.config}: {exc}"), file=sys.stderr)
        return EXIT_CONFIG
    except (StateError, StoreUnavailable) as exc:
        return _state_failed(exc)
    print(
        redactor.known(
            f"attested {recorded.checklist}/{recorded.item} by {recorded.by}"
            f" at {attestations.document(recorded, redactor)['at']} (#{recorded.id})"
        )
    )
    return EXIT_READY


async def _attest(
    config: Config, requests: Sequence[AttestationRequest], redactor: Redactor
) -> list[Attestation]:
    """Writes straight to the configured store: a running daemon shows it at its next scrape."""
    from exporter import attestations
    from exporter.state import open_store

    store = open_store(config.exporter.state, redactor)
    await store.open()
    try:
        now = SystemClock().now()
        return [await attestations.attest(store, config, r, None, now) for r in requests]
    finally:
        await store.close()


def _with_listen(loaded: LoadedConfig, listen: str) -> LoadedConfig:
    from exporter.config import Config
    from exporter.loader import LoadedConfig

    exporter = loaded.config.exporter.model_copy(update={"listen": listen})
    config = Config.model_validate({**dict(loaded.config), "exporter": exporter})
    return LoadedConfig(config, loaded.path, loaded.secrets)


def _load_checklists(args: argparse.Namespace, serving: bool = False) -> LoadedConfig | None:
    """The config of --config, when every --checklist names one of its checklists; `serving`
    (check serves the exporter's endpoints while it runs): its self-probes follow `listen`."""
    if getattr(args, "url", None):
        # The daemon probes, with its environment: secrets need not be set on this host.
        loaded = _load(args.config, unset_ok=True)
    else:
        loaded = _following_listen(args.config, None) if serving else _load(args.config)
    if loaded is None:
        return None
    names = {c.name for c in loaded.config.checklists}
    unknown = set(args.checklist or ()) - names
    if unknown:
        print(
            f"{args.config}: no checklist named {', '.join(sorted(unknown))} "
            f"(have: {', '.join(sorted(names))})",
            file=sys.stderr,
        )
        return None
    return loaded


def cmd_check(args: argparse.Namespace) -> int:
    loaded = _load_checklists(args, serving=True)
    if loaded is None:
        return EXIT_CONFIG
    from exporter import logs, render
    from exporter.redact import Redactor
    from exporter.remote import RemoteError
    from exporter.state import StateError

    redactor = Redactor(loaded.secrets)
    logs.configure("console", "error", redactor)
    loaded = args.shard.select(loaded)

    try:
        if args.url:
            views, now = _check_remote(loaded, args)
        else:
            views, now = asyncio.run(
                _check(loaded, set(args.checklist) if args.checklist else None, not args.no_serve)
            )
    except StateError as exc:
        return _state_failed(exc)
    except RemoteError as exc:
        print(f"check: {exc}", file=sys.stderr)
        return exc.code
    only = args.only_failing
    output = {
        "table": lambda: render.table(views, args.fail_under, only, redactor=redactor),
        "json": lambda: render.as_json(views, now, args.fail_under, only, redactor=redactor),
        "markdown": lambda: render.markdown(views, now, args.fail_under, only, redactor=redactor),
        "junit": lambda: render.junit(views, args.fail_under, only, redactor=redactor),
    }[args.format]()
    if args.output is None:
        sys.stdout.write(output)
    else:
        if not _write(Path(args.output), output):
            return EXIT_RUNTIME
        for view in views:
            failing = sum(render.failing(v) for v in view.items)
            print(f"{render.checklist_summary(view, args.fail_under)}; {failing} failing")
        print(f"{args.format} written to {args.output}")
    ready = all(render.verdict(v, args.fail_under) for v in views)
    return EXIT_READY if ready else EXIT_NOT_READY


def _check_remote(
    loaded: LoadedConfig, args: argparse.Namespace
) -> tuple[list[ChecklistView], float]:
    """`check --url`: the daemon runs the checklists; they are judged here, by the one rule,
    against the same config file."""
    from exporter import remote
    from exporter.evaluate import evaluate
    from exporter.remote import RemoteError

    names = list(args.checklist or (c.name for c in loaded.config.checklists))
    status = asyncio.run(remote.run_checklists(args.url, os.environ.get(args.token_env), names))
    now = SystemClock().now()
    states = remote.states(loaded.config, status, now)
    served = {c["name"] for c in status.get("checklists", ())}
    missing = sorted(set(names) - served)
    if missing:
        raise RemoteError(f"{args.url}: the daemon has no checklist {', '.join(missing)}", 2)
    views = [v for v in evaluate(loaded.config, states, now) if v.checklist.name in names]
    return views, now


def _write(path: Path, text: str) -> bool:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"{path}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def cmd_explain(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if loaded is None:
        return EXIT_CONFIG
    from exporter.evaluate import evaluate
    from exporter.explain import Unknown, explain, find
    from exporter.redact import Redactor
    from exporter.state import StateError, StoreUnavailable

    try:
        key = find(loaded.config, args.target)
    except Unknown as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    redactor = Redactor(loaded.secrets)
    try:
        states, history, changes = asyncio.run(_item_state(loaded, key, redactor))
    except (StateError, StoreUnavailable) as exc:
        return _state_failed(exc)
    now = SystemClock().now()
    views = evaluate(loaded.config, states, now)
    view = next(v for c in views for v in c.items if v.key == key)
    sys.stdout.write(redactor.text(explain(view, loaded.config, now, history, changes)))
    return EXIT_READY


def cmd_completion(args: argparse.Namespace) -> int:
    from exporter.completion import script

    sys.stdout.write(script(build_parser(), args.shell))
    return EXIT_READY


def _ratio(text: str) -> float:
    """`--fail-under RATIO`; argparse turns the error into a usage message and exit 2."""
    try:
        value: float | None = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a ratio from 0 to 1")
    return value


def _assignment(text: str) -> tuple[str, str]:
    """`--set NAME=VALUE`; argparse turns the error into a usage message and exit 2."""
    name, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise argparse.ArgumentTypeError(
            f"{text!r}: write NAME=VALUE, e.g. --set BASE_URL=https://api.example.com"
        )
    if not value:
        raise argparse.ArgumentTypeError(f"{text!r}: give {name} a value")
    return name, value


def cmd_import(args: argparse.Namespace) -> int:
    from exporter.config import NAME_PATTERN
    from exporter.importing.importer import (
        FillError,
        default_name,
        fill,
        import_checklist,
        render_yaml,
        summary,
    )
    from exporter.importing.mdchecklist import decode
    from exporter.loader import ConfigError, parse_config

    source = Path(args.checklist)
    try:
        text = decode(source.read_bytes())
    except OSError as exc:
        print(f"{source}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_CONFIG
    name = args.name or _updated_name(args.update) or default_name(source.stem)
    if not re.match(NAME_PATTERN, name) or len(name) > 100:
        print(
            f"--name {name!r}: use lowercase letters, digits, '-' and '_' (e.g. stock-collector)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    imported = import_checklist(text, name, source.name)
    if not imported.items:
        print(f"{source}: no checklist items found (lines such as '- [ ] ...')", file=sys.stderr)
        return EXIT_CONFIG
    try:
        imported = fill(imported, dict(args.values))
    except FillError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    target = args.output or args.update or "<stdout>"
    if args.output and Path(args.output).exists() and not args.force:
        print(
            f"{args.output} exists: import would replace it and lose its edits; re-import into"
            f" it with --update {args.output} (keeps the edits), or replace it with --force",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    output = render_yaml(imported, None if target == "<stdout>" else target)
    updated = None
    if args.update:
        from exporter.importing.update import UpdateError, update

        try:
            updated = update(
                Path(args.update).read_text(encoding="utf-8"), output, source.name, args.prune
            )
        except (OSError, UnicodeDecodeError, UpdateError) as exc:
            error = exc.strerror if isinstance(exc, OSError) else exc
            print(f"{args.update}: cannot update: {error}", file=sys.stderr)
            return EXIT_CONFIG
        output = updated.text
    try:
        loaded = parse_config(output, target)
    except ConfigError as exc:
        # The environment can break it (a placeholder set to a bad value), or a kept edit;
        # say where. Nothing is written.
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return EXIT_CONFIG
    from exporter.redact import Redactor

    redactor = Redactor(loaded.secrets)
    if target == "<stdout>":
        sys.stdout.write(output)
    elif not _write(Path(target), output):
        return EXIT_RUNTIME
    shown = "\n".join(summary(imported, target, dict(args.values)))
    print(redactor.known(shown), file=sys.stderr)
    if updated is not None:
        _updated(updated, target, args.prune)
    return _import_ticks(loaded.config, imported, redactor) if args.check_state else EXIT_READY


def _updated_name(path: str | None) -> str | None:
    """With --update FILE, the checklist keeps the name FILE gives it."""
    if path is None:
        return None
    from exporter.importing.update import checklist_name

    try:
        return checklist_name(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None  # said when the update reads the file


def _updated(updated: Updated, target: str, prune: bool) -> None:
    def ids(names: tuple[str, ...]) -> str:
        return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")

    lines = [f"  updated {target}: {len(updated.kept)} items kept as the file had them"]
    if updated.added:
        lines.append(f"  added ({len(updated.added)}): {ids(updated.added)}")
    if updated.removed:
        where = "dropped (--prune)" if prune else f"kept at the end of {target}, commented out"
        lines.append(
            f"  no longer in the document ({len(updated.removed)}): {ids(updated.removed)}; {where}"
        )
    if updated.own:
        lines.append(
            f"  yours (not from the document), left as they are ({len(updated.own)}):"
            f" {ids(updated.own)}"
        )
    print("\n".join(lines), file=sys.stderr)


def _import_ticks(config: Config, imported: Imported, redactor: Redactor) -> int:
    """`--check-state`: the document's sign-offs carry over as attestations by `import`."""
    from exporter.attestations import AttestationRequest
    from exporter.state import StateError, StoreUnavailable

    ticked = [i for i in imported.items if i.checked]
    requests = [
        AttestationRequest(
            checklist=imported.name,
            item=i.id,
            by="import",
            note=f"ticked in {imported.source}, line {i.line}",
        )
        for i in ticked
        if i.suggestion is None
    ]
    try:
        asyncio.run(_attest(config, requests, redactor))
    except (StateError, StoreUnavailable) as exc:
        return _state_failed(exc)
    probed = len(ticked) - len(requests)
    print(
        redactor.text(
            f"{config.exporter.state}: {len(requests)} ticked manual items attested by import"
            + (f"; {probed} ticked items have probes, whose runs decide" if probed else "")
        ),
        file=sys.stderr,
    )
    return EXIT_READY


def cmd_run(args: argparse.Namespace) -> int:
    """The job's exit code is the wrapper's: cron and CI see the job, not its monitoring."""
    from exporter.remote import run_job

    argv = args.job[1:] if args.job[:1] == ["--"] else args.job
    if not argv:
        print("run: give the command after --, e.g. -- /usr/local/bin/backup", file=sys.stderr)
        return EXIT_CONFIG
    token = os.environ.get(args.token_env)
    code, problems = run_job(args.url, token, args.checklist, args.item, argv, sys.stdout.buffer)
    for problem in problems:
        print(f"run: not reported: {problem}", file=sys.stderr)
    return code


def cmd_report(args: argparse.Namespace) -> int:
    loaded = _load_checklists(args)
    if loaded is None:
        return EXIT_CONFIG
    from exporter import render
    from exporter.evaluate import evaluate
    from exporter.redact import Redactor
    from exporter.state import StateError

    redactor = Redactor(loaded.secrets)
    try:
        states = asyncio.run(_stored_states(loaded, redactor))
    except StateError as exc:
        return _state_failed(exc)
    now = SystemClock().now()
    views = [
        v
        for v in evaluate(loaded.config, states, now)
        if not args.checklist or v.checklist.name in args.checklist
    ]
    if args.format == "html":
        from exporter.web.pages import report_page

        output = report_page(views, now, redactor=redactor)
    else:
        output = render.markdown(views, now, redactor=redactor)
    if args.output is None:
        sys.stdout.write(output)
    else:
        Path(args.output).write_text(output, encoding="utf-8")
    return EXIT_READY


async def _stored_states(loaded: LoadedConfig, redactor: Redactor) -> dict[ItemKey, ItemState]:
    """The items' states as the store has them: what the daemon or the last `check` recorded."""
    from exporter.state import open_store

    store = open_store(loaded.config.exporter.state, redactor)
    await store.open()
    try:
        return dict(store.states())
    finally:
        await store.close()


async def _item_state(
    loaded: LoadedConfig, key: ItemKey, redactor: Redactor
) -> tuple[dict[ItemKey, ItemState], list[Attestation], list[Change]]:
    """The stored states, and the item's latest attestations and state changes, newest first
    (for `explain`)."""
    from exporter.history import LAST_CHANGES
    from exporter.state import open_store

    store = open_store(loaded.config.exporter.state, redactor)
    await store.open()
    try:
        attestations = await store.attestations(key.checklist, key.item, 5)
        # The newest records, events (definitions, attestations, waivers) among them.
        records = await store.history(key.checklist, key.item, None, None, 200)
        changes = [c for c in records if c.is_state][-LAST_CHANGES:][::-1]
        return dict(store.states()), attestations, changes
    finally:
        await store.close()


async def _check(
    loaded: LoadedConfig, checklists: set[str] | None, serve: bool
) -> tuple[list[ChecklistView], float]:
    import uvicorn

    from exporter.daemon import Daemon
    from exporter.evaluate import evaluate
    from exporter.serve import ListenError, listen, web_app

    daemon = Daemon(loaded)
    await daemon.start(schedule=False)
    server_task = None
    server: uvicorn.Server | None = None
    sock = None
    if serve:
        # A daemon serving there already answers for itself.
        with contextlib.suppress(ListenError):
            sock = listen(loaded.config.exporter.host, loaded.config.exporter.port)
    if sock is not None:
        # Items that probe the exporter itself (/health/live, /metrics) see real endpoints: the
        # socket listens already, so a probe that connects first waits until uvicorn accepts.
        server = uvicorn.Server(
            uvicorn.Config(web_app(daemon), log_config=None, access_log=False, lifespan="off")
        )
        server_task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await daemon.run_all(checklists)
        now = daemon.clock.now()
        views = [
            v
            for v in evaluate(daemon.config, daemon.states(), now)
            if checklists is None or v.checklist.name in checklists
        ]
    finally:
        if server is not None and server_task is not None:
            server.should_exit = True
            await server_task
        await daemon.stop()
    return views, now
