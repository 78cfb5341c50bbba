"""/metrics over HTTP from a real `serve`: gzip when the scraper accepts it, plain otherwise,
in both the Prometheus text and the OpenMetrics encodings."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest

from tests.support.exporter import Exporter

pytestmark = pytest.mark.slow

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    tmp_path = tmp_path_factory.mktemp("metrics-http")
    config = tmp_path / "readiness.yaml"
    config.write_text(f"""
exporter:
  state: "sqlite:///{tmp_path}/state.db"
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: restore-tested
            title: 'Restore "tested" \\ quarterly'
            manual: {{}}
""")
    proc = Exporter(config)
    proc.start()
    yield proc
    proc.stop()


def raw(exporter: Exporter, accept: str, accept_encoding: str) -> tuple[httpx.Headers, bytes]:
    """The response as sent, before any decoding by the client."""
    headers = {"Accept": accept, "Accept-Encoding": accept_encoding}
    with httpx.stream("GET", f"{exporter.url}/metrics", headers=headers, timeout=5) as response:
        assert response.status_code == 200
        return response.headers, b"".join(response.iter_raw())


def steady(body: bytes) -> list[bytes]:
    """The lines that cannot change between two scrapes of an idle exporter (process_* moves)."""
    return [line for line in body.splitlines() if b"process_" not in line]


@pytest.mark.parametrize("accept", ["text/plain", OPENMETRICS], ids=["text", "openmetrics"])
def test_metrics_are_gzipped_for_a_scraper_that_accepts_gzip(
    exporter: Exporter, accept: str
) -> None:
    plain_headers, plain = raw(exporter, accept, "identity")
    headers, body = raw(exporter, accept, "gzip")

    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding"
    assert headers["content-type"] == plain_headers["content-type"]
    assert "content-encoding" not in plain_headers
    assert plain_headers["vary"] == "Accept-Encoding"
    assert len(body) < len(plain)
    unzipped = gzip.decompress(body)
    assert steady(unzipped) == steady(plain)
    assert b'title="Restore \\"tested\\" \\\\ quarterly"' in unzipped
    if accept == OPENMETRICS:
        assert headers["content-type"].startswith("application/openmetrics-text")
        assert unzipped.endswith(b"# EOF\n")


def test_gzip_refused_with_q_zero_is_not_sent(exporter: Exporter) -> None:
    headers, body = raw(exporter, "text/plain", "gzip;q=0, identity")

    assert "content-encoding" not in headers
    assert body.startswith(b"# HELP readiness_item_passing ")
