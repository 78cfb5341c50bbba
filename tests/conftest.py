"""Fixtures every test directory may use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import HttpTarget


@pytest.fixture
def http_target() -> Iterator[HttpTarget]:
    """An HTTP server on loopback answering 200 on /health; tests may stop and restart it."""
    server = HttpTarget()
    server.start()
    yield server
    server.stop()
