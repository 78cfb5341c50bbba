"""The `readiness-exporter` command: serve, check, validate, attest."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import uvicorn
from pydantic import ValidationError

from exporter import __version__, logs, render
from exporter.clock import SystemClock
from exporter.config import Config
from exporter.evaluate import ChecklistView, evaluate
from exporter.loader import ConfigError, LoadedConfig, load_config

if TYPE_CHECKING:
    from exporter.attestations import AttestationRequest
    from exporter.results import Attestation

EXIT_READY, EXIT_NOT_READY, EXIT_CONFIG = 0, 1, 2


class _Server(uvicorn.Server):
    """uvicorn, but SIGTERM/SIGINT end in a graceful shutdown and exit 0 (uvicorn re-raises the
    signal afterwards, which makes service managers and tests see a kill instead of a stop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    code: int = args.run(args)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="readiness-exporter",
        description="Turns a production-readiness checklist into live Prometheus gauges.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbs = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = verbs.add_parser("serve", help="run the daemon")
    serve.add_argument("--config", required=True, help="config YAML file")
    serve.add_argument("--listen", help="host:port, overrides exporter.listen")
    serve.set_defaults(run=cmd_serve)

    check = verbs.add_parser("check", help="run every probe once and print the result")
    check.add_argument("--config", required=True, help="config YAML file")
    check.add_argument("--format", choices=["table", "json", "markdown", "junit"], default="table")
    check.add_argument("--checklist", action="append", help="only this checklist (repeatable)")
    check.add_argument(
        "--fail-under",
        type=float,
        default=1.0,
        metavar="RATIO",
        help="exit 1 when a checklist's score is below RATIO (default 1.0)",
    )
    check.add_argument(
        "--no-serve",
        action="store_true",
        help="do not serve the exporter's own endpoints during the run",
    )
    check.set_defaults(run=cmd_check)

    validate = verbs.add_parser("validate", help="check a config file and report every error")
    validate.add_argument("--config", required=True, help="config YAML file")
    validate.set_defaults(run=cmd_validate)

    attest = verbs.add_parser(
        "attest",
        help="record that a person did a manual item (or, for item go-live, that a checklist"
        " went live)",
    )
    attest.add_argument("--config", required=True, help="config YAML file")
    attest.add_argument("checklist", metavar="CHECKLIST")
    attest.add_argument("item", metavar="ITEM", help="a manual item's id, or go-live")
    attest.add_argument("--by", required=True, metavar="NAME", help="who did it")
    attest.add_argument("--note", default="", metavar="TEXT", help="what was done, a link")
    attest.set_defaults(run=cmd_attest)
    return parser


def _load(path: str) -> LoadedConfig | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return None


def cmd_validate(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if loaded is None:
        return EXIT_CONFIG
    config = loaded.config
    items = sum(len(s.items) for c in config.checklists for s in c.sections)
    print(f"{args.config}: OK ({len(config.checklists)} checklists, {items} items)")
    return EXIT_READY


def cmd_serve(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if loaded is None:
        return EXIT_CONFIG
    if args.listen:
        loaded = _with_listen(loaded, args.listen)
    settings = loaded.config.exporter
    logs.configure(settings.log_format, settings.log_level)
    from exporter.app import create_app
    from exporter.daemon import Daemon, load_tokens

    try:
        tokens = load_tokens(loaded)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return EXIT_CONFIG
    app = create_app(Daemon(loaded, tokens=tokens))
    server = _Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
            server_header=False,
        )
    )
    server.run()
    return 0 if server.started else EXIT_NOT_READY


def cmd_attest(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if loaded is None:
        return EXIT_CONFIG
    logs.configure("console", "error")
    from exporter import attestations
    from exporter.state import StoreUnavailable

    try:
        request = attestations.AttestationRequest(
            checklist=args.checklist, item=args.item, by=args.by, note=args.note
        )
        recorded = asyncio.run(_attest(loaded.config, request))
    except (ValidationError, attestations.Invalid, attestations.NotFound) as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreUnavailable as exc:
        print(f"not recorded: {exc}", file=sys.stderr)
        return EXIT_NOT_READY
    print(
        f"attested {recorded.checklist}/{recorded.item} by {recorded.by}"
        f" at {attestations.document(recorded)['at']} (#{recorded.id})"
    )
    return EXIT_READY


async def _attest(config: Config, request: AttestationRequest) -> Attestation:
    """Writes straight to the configured store: a running daemon shows it at its next scrape."""
    from exporter import attestations
    from exporter.state import open_store

    store = open_store(config.exporter.state)
    await store.open()
    try:
        return await attestations.attest(store, config, request, None, SystemClock().now())
    finally:
        await store.close()


def _with_listen(loaded: LoadedConfig, listen: str) -> LoadedConfig:
    exporter = loaded.config.exporter.model_copy(update={"listen": listen})
    config = Config.model_validate({**dict(loaded.config), "exporter": exporter})
    return LoadedConfig(config, loaded.path, loaded.secrets)


def cmd_check(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if loaded is None:
        return EXIT_CONFIG
    names = {c.name for c in loaded.config.checklists}
    unknown = set(args.checklist or ()) - names
    if unknown:
        print(
            f"{args.config}: no checklist named {', '.join(sorted(unknown))} "
            f"(have: {', '.join(sorted(names))})",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    logs.configure("console", "error")
    views, now = asyncio.run(
        _check(loaded, set(args.checklist) if args.checklist else None, serve=not args.no_serve)
    )
    output = {
        "table": lambda: render.table(views),
        "json": lambda: render.as_json(views, now),
        "markdown": lambda: render.markdown(views),
        "junit": lambda: render.junit(views),
    }[args.format]()
    sys.stdout.write(output)
    return EXIT_READY if all(_ready(v, args.fail_under) for v in views) else EXIT_NOT_READY


def _ready(view: ChecklistView, fail_under: float) -> bool:
    critical_ok = all(v.passing for v in view.items if v.item.severity.value == "critical")
    return critical_ok and view.score >= fail_under


async def _check(
    loaded: LoadedConfig, checklists: set[str] | None, serve: bool
) -> tuple[list[ChecklistView], float]:
    from exporter.app import create_app
    from exporter.daemon import Daemon

    daemon = Daemon(loaded)
    await daemon.start(schedule=False)
    server_task = None
    server: uvicorn.Server | None = None
    sock = _bind(loaded.config.exporter.host, loaded.config.exporter.port) if serve else None
    if sock is not None:
        # Items that probe the exporter itself (/health/live, /metrics) see real endpoints.
        server = uvicorn.Server(
            uvicorn.Config(create_app(daemon), log_config=None, access_log=False, lifespan="off")
        )
        server_task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not server_task.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.01)
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


def _bind(host: str, port: int) -> socket.socket | None:
    """A listening socket on the exporter's address, or None when it is taken (a daemon runs)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    with contextlib.suppress(OSError):
        sock.set_inheritable(True)
    return sock
