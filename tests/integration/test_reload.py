"""Config reloads against a real `serve`: one at a time, in the order asked, so after a burst of
SIGHUPs the reload metrics describe the file as it was last read."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.exporter import Exporter, wait_for

pytestmark = pytest.mark.slow

BROKEN = "exporter: {default_interval: [30s]\n"


def good(tmp_path: Path, round_: int) -> str:
    """A valid config; each round adds items, so applying it writes to the store (an await
    during which, unserialised, a later reload could finish first)."""
    items = "".join(
        f"""
          - id: item-{round_}-{i}
            title: Item {round_}/{i}
            file: {{path: "{tmp_path}/readiness.yaml"}}"""
        for i in range(1000)
    )
    return f"""
exporter:
  state: "sqlite:///{tmp_path}/state.db"
  default_interval: 1h
checklists:
  - name: app
    sections:
      - name: files
        items:{items}
"""


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Exporter]:
    config = tmp_path / "readiness.yaml"
    config.write_text(good(tmp_path, 0))
    proc = Exporter(config)
    proc.start()
    yield proc
    if proc.proc is not None:
        proc.stop()


def reload_lines(exporter: Exporter) -> int:
    output = exporter.output()
    return output.count('"config_reloaded"') + output.count('"config_reload_failed"')


def settled(exporter: Exporter) -> int:
    """The number of reloads logged once no new one has appeared for a second."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = reload_lines(exporter)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > 1.0:
            return now
        time.sleep(0.05)
    raise AssertionError(f"reloads still being logged after 30s:\n{exporter.output()[-2000:]}")


@pytest.mark.parametrize("last", ["broken", "good"])
def test_a_burst_of_sighups_ends_on_the_last_file_read(
    tmp_path: Path, exporter: Exporter, last: str
) -> None:
    config = exporter.config
    assert exporter.proc is not None
    rounds = [("good" if i % 2 == 0 else "broken") for i in range(12)]
    if last == "good":
        rounds = [*rounds[1:], "good"]
    for i, kind in enumerate(rounds, start=1):
        config.write_text(good(tmp_path, i) if kind == "good" else BROKEN)
        exporter.proc.send_signal(signal.SIGHUP)
        # An operator's burst: each file is on disk a moment, long enough for its reload to
        # read it, and the next signal lands while that reload is still being applied.
        time.sleep(0.03)
    settled(exporter)
    expected = 1.0 if last == "good" else 0.0
    assert exporter.value("readiness_config_last_reload_successful") == expected, exporter.output()[
        -3000:
    ]
    # One more reload of the same file agrees: the flag describes the file on disk.
    exporter.proc.send_signal(signal.SIGHUP)
    wait_for(
        lambda: exporter.value("readiness_config_last_reload_successful") == expected,
        10,
        "the flag after one more reload",
        exporter,
    )
