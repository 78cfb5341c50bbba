"""Fixtures every test directory may use."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from tests.support.servers import HttpTarget


@pytest.fixture
def http_target() -> Iterator[HttpTarget]:
    """An HTTP server on loopback answering 200 on /health; tests may stop and restart it."""
    server = HttpTarget()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """A test that runs a CLI verb in this process configures logging to the stream pytest
    captured for it, which pytest closes afterwards: later tests must log where they did."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers, root.level = handlers, level
