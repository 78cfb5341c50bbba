"""The audit verbs of the CLI: `waive`, `approve` and `revoke` (through a running exporter's
API, so the tokens and the no-self-approval rule hold) and `evidence` (from the state)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from exporter.arguments import checklists, token_env, verb

EXIT_OK, EXIT_USAGE, EXIT_RUNTIME = 0, 2, 3
TIMEOUT = 10.0


def add_verbs(verbs: Any) -> None:
    """Adds the audit verbs to the CLI's subparsers."""
    waive = verb(
        verbs,
        "waive",
        cmd_waive,
        config=False,
        help="ask for a waiver: an item not applicable (or its risk accepted) until a date",
    )
    _api_args(waive)
    waive.add_argument("checklist", metavar="CHECKLIST")
    waive.add_argument("item", metavar="ITEM")
    waive.add_argument("--reason", required=True, metavar="TEXT", help="why it does not apply")
    waive.add_argument("--by", required=True, metavar="NAME", help="who asks")
    waive.add_argument(
        "--expires",
        required=True,
        metavar="WHEN",
        help="a date (2027-03-01), a time (2027-03-01T12:00:00Z) or a span from now (30d);"
        " at most exporter.max_waiver ahead",
    )
    for decision, text in (
        ("approve", "approve a waiver (an admin other than who asked: not its token or its --by)"),
        ("revoke", "revoke a waiver (admin): the item counts again at once"),
    ):
        parser = verb(verbs, decision, cmd_decide, config=False, help=text)
        _api_args(parser)
        parser.add_argument("id", metavar="ID", type=int, help="the waiver's id (from waive)")
        parser.set_defaults(decision=decision)

    evidence = verb(
        verbs,
        "evidence",
        cmd_evidence,
        config=True,
        help="the audit document of a period: time passing, regressions, attestations, waivers",
    )
    evidence.add_argument("--since", required=True, metavar="DATE", help="start (2026-10-01)")
    evidence.add_argument("--until", metavar="DATE", help="end, exclusive (default: now)")
    checklists(evidence)
    evidence.add_argument("--format", choices=["markdown", "html", "json"], default="markdown")
    evidence.add_argument(
        "--verify",
        action="store_true",
        help="check the audit records' hash chain; exit 1 naming each broken record",
    )
    evidence.add_argument(
        "-o",
        "--output",
        metavar="FILE|DIR",
        help="write here, not to stdout; a directory gets one document per checklist",
    )


def _api_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", required=True, help="the exporter's base URL, e.g. http://127.0.0.1:9840"
    )
    token_env(parser, "environment variable holding the API token (default READINESS_TOKEN)")


def cmd_waive(args: argparse.Namespace) -> int:
    body = {
        "checklist": args.checklist,
        "item": args.item,
        "reason": args.reason,
        "by": args.by,
        "expires": args.expires,
    }
    return _call(args, "POST", "/api/v1/waivers", body)


def cmd_decide(args: argparse.Namespace) -> int:
    if args.decision == "approve":
        return _call(args, "POST", f"/api/v1/waivers/{args.id}/approve", None)
    return _call(args, "DELETE", f"/api/v1/waivers/{args.id}", None)


def _call(args: argparse.Namespace, method: str, path: str, body: dict[str, str] | None) -> int:
    import httpx

    token = os.environ.get(args.token_env, "")
    if not token:
        print(
            f"set the API token in ${args.token_env} (or name another with --token-env)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = args.url.rstrip("/") + path
    try:
        response = httpx.request(
            method,
            url,
            headers=headers,
            content=json.dumps(body) if body is not None else None,
            timeout=TIMEOUT,
        )
    except httpx.HTTPError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    try:
        doc = response.json()
    except ValueError:
        doc = {"error": response.text[:500]}
    if response.status_code >= 400:
        field = f" ({doc['field']})" if isinstance(doc, dict) and "field" in doc else ""
        error = doc.get("error", response.reason_phrase) if isinstance(doc, dict) else doc
        print(f"{url}: {response.status_code} {error}{field}", file=sys.stderr)
        return EXIT_USAGE if response.status_code in (404, 409, 422) else EXIT_RUNTIME
    print(
        f"waiver {doc['id']} for {doc['checklist']}/{doc['item']}: {doc['status']}"
        f" (asked by {doc['by']}, approved by {doc['approved_by'] or '-'},"
        f" expires {doc['expires']})"
    )
    return EXIT_OK


def cmd_evidence(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from exporter import evidence
    from exporter.clock import SystemClock
    from exporter.loader import ConfigError, load_config
    from exporter.redact import Redactor
    from exporter.state import StateError, StoreUnavailable
    from exporter.times import parse_instant

    try:
        loaded = load_config(args.config)
        config = loaded.config
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return EXIT_USAGE
    now = SystemClock().now()
    try:
        since = parse_instant(args.since)
        until = parse_instant(args.until) if args.until else now
    except ValueError as exc:
        print(f"--since/--until: {exc} (use a date such as 2026-10-01)", file=sys.stderr)
        return EXIT_USAGE
    if until <= since:
        print("--until must come after --since", file=sys.stderr)
        return EXIT_USAGE
    unknown = set(args.checklist or ()) - {c.name for c in config.checklists}
    if unknown:
        print(f"{args.config}: no checklist named {', '.join(sorted(unknown))}", file=sys.stderr)
        return EXIT_USAGE
    try:
        records, problems, count = asyncio.run(_read(config, since, until, args.verify))
    except (StateError, StoreUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    period = evidence.Period(since, until, now)
    redactor = Redactor(loaded.secrets)
    chain = evidence.chain_text(args.verify, problems, count)
    if args.output and Path(args.output).is_dir():
        # One document per checklist, each with its own hash: what an auditor asks for.
        suffix = {"json": "json", "html": "html", "markdown": "md"}[args.format]
        for checklist in args.checklist or [c.name for c in config.checklists]:
            report = evidence.build(config, records, period, [checklist], redactor)
            path = Path(args.output) / f"{checklist}-evidence.{suffix}"
            path.write_text(
                _render(evidence, report, chain, args.format, redactor), encoding="utf-8"
            )
            print(f"wrote {path} (sha256 {report['sha256']})")
    else:
        report = evidence.build(config, records, period, args.checklist, redactor)
        output = _render(evidence, report, chain, args.format, redactor)
        if args.output:
            Path(args.output).write_text(output, encoding="utf-8")
        else:
            sys.stdout.write(output)
    for problem in problems:
        print(f"audit chain: {problem}", file=sys.stderr)
    return 1 if problems else EXIT_OK


def _render(evidence: Any, report: dict[str, Any], chain: str, form: str, redactor: Any) -> str:
    if form == "json":
        return json.dumps({**report, "chain": chain}, indent=2, ensure_ascii=False) + "\n"
    if form == "html":
        return str(evidence.html(report, chain, redactor))
    return str(evidence.markdown(report, chain, redactor))


async def _read(config: Any, since: float, until: float, check: bool) -> tuple[Any, list[str], int]:
    """The period's records, and with `check` the chain's problems over every record kept."""
    from exporter import evidence
    from exporter.state import open_store

    store = open_store(config.exporter.state)
    await store.open()
    try:
        history = await store.history(None, None, since, until, evidence.ALL, prior=True)
        if not check:
            waivers = await store.waivers(None, None, evidence.ALL)
            return evidence.Records(history, waivers, dict(store.states())), [], 0
        # One snapshot: a record a running daemon writes meanwhile is in all of its reads or
        # in none, never a row without its history record (or the reverse).
        snapshot = await store.snapshot(evidence.ALL)
        records = evidence.Records(history, snapshot.waivers, dict(store.states()))
        problems = evidence.verify(
            snapshot.history, snapshot.attestations, snapshot.waivers, snapshot.head
        )
        return records, problems, len(snapshot.history)
    finally:
        await store.close()
