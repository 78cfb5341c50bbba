"""The cost of item history at scale (issue 17): recording definitions, a history tick over
every item (steady: nothing changed), and what /status reads and summarises per request.

    .venv/bin/python bench/audit_history.py [ITEMS]    (default 10,000; SQLite in a temp dir)
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from exporter.loader import parse_config
from exporter.reasons import Reason
from exporter.recorder import Recorder
from exporter.redact import Redactor
from exporter.results import ItemKey, Result
from exporter.state.sqlite import SqliteStore
from exporter.web.status import history_summaries

T0 = 1_800_000_000.0
RETENTION = 400 * 86400.0


def config_text(items: int) -> str:
    lines = "\n".join(
        f"          - {{id: i{i}, title: I{i}, tcp: {{host: 127.0.0.1, port: 1}}}}"
        for i in range(items)
    )
    return f"checklists:\n  - name: app\n    sections:\n      - name: s\n        items:\n{lines}\n"


async def measure(items: int, directory: Path) -> dict[str, float]:
    config = parse_config(config_text(items)).config
    store = SqliteStore(str(directory / "state.db"))
    await store.open()
    figures: dict[str, float] = {}
    try:
        recorder = Recorder(store, Redactor())
        recorder.track(config)

        async def timed(name: str, work: object) -> None:
            started = time.perf_counter()
            await work  # type: ignore[misc]
            figures[name] = round(time.perf_counter() - started, 3)

        await timed("define_first_s", recorder.define(T0))
        await timed("define_unchanged_s", recorder.define(T0 + 1))
        # Together, as the scheduler's runs arrive: the store commits them in groups.
        await asyncio.gather(
            *(
                store.record(ItemKey("app", f"i{i}"), Result(True, Reason.OK, T0, 0.01))
                for i in range(items)
            )
        )
        await timed("tick_first_s", recorder.tick(store.states(), T0 + 2, RETENTION))
        await timed("tick_steady_s", recorder.tick(store.states(), T0 + 3, RETENTION))
        started = time.perf_counter()
        recent = await store.history(None, None, T0 - 30 * 86400, None, 100_000, prior=True)
        figures["status_read_s"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        history_summaries(recent, T0 + 10, Redactor())
        figures["status_summaries_s"] = round(time.perf_counter() - started, 3)
    finally:
        await store.close()
    return figures


def main() -> None:
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as directory:
        figures = asyncio.run(measure(items, Path(directory)))
    print({"items": items, **figures})


if __name__ == "__main__":
    main()
