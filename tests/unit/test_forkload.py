"""`serve` loads its config in a forked child: the same models and the same errors as loading
in the process, and the loading happens in another process."""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from exporter import forkload
from exporter.loader import ConfigError, LoadedConfig, load_config

CONFIG = """
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: health
            title: Health answers
            http: {url: "http://127.0.0.1:8000/health", headers: {X-Key: "${FORKLOAD_KEY}"}}
            expect: ["status == 200", "body matches 'o+k'"]
          - {id: port, title: Port open, tcp: {host: 127.0.0.1, port: 5432}}
"""


def test_the_config_loaded_in_a_child_equals_the_one_loaded_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORKLOAD_KEY", "header-secret-value")
    path = tmp_path / "readiness.yaml"
    path.write_text(CONFIG)
    apart, here = forkload.load_config_apart(str(path)), load_config(str(path))
    assert apart == here
    assert "header-secret-value" in apart.secrets


def test_the_loading_happens_in_another_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "readiness.yaml"
    path.write_text(CONFIG.replace("${FORKLOAD_KEY}", "v"))

    def loaded_where(file: str, tokens: bool = False) -> LoadedConfig:
        return replace(load_config(file, tokens), path=str(os.getpid()))

    monkeypatch.setattr(forkload, "load_config", loaded_where)
    if threading.active_count() > 1:
        pytest.skip("threads are running: the loader rightly does not fork")
    assert forkload.load_config_apart(str(path)).path != str(os.getpid())


def test_errors_are_those_of_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(CONFIG.replace("title: Port open", "title: Port open, severity: loud"))
    with pytest.raises(ConfigError) as here:
        load_config(str(path))
    with pytest.raises(ConfigError) as apart:
        forkload.load_config_apart(str(path))
    assert apart.value.issues == here.value.issues
    assert "severity" in str(apart.value)


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("broken", [False, True])
def test_loading_leaves_the_cyclic_collector_as_it_found_it(
    tmp_path: Path, enabled: bool, broken: bool
) -> None:
    path = tmp_path / "readiness.yaml"
    text = CONFIG.replace("${FORKLOAD_KEY}", "v")
    path.write_text(text.replace("tcp:", "tcp: [") if broken else text)
    (gc.enable if enabled else gc.disable)()
    try:
        for load in (load_config, forkload.load_config_apart):
            with contextlib.suppress(ConfigError):
                load(str(path))
            assert gc.isenabled() is enabled
    finally:
        gc.enable()
