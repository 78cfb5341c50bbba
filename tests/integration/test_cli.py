"""The CLI as users run it: exit codes and every output format of `check`, and `validate`."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from tests.support.cli import run_cli as run
from tests.support.servers import free_port

REPO = Path(__file__).parents[2]


@pytest.fixture
def fresh_env(tmp_path: Path) -> dict[str, str]:
    """The example config on a free port with its state in tmp: as on a fresh machine."""
    port = free_port()
    return {
        "READINESS_LISTEN": f"127.0.0.1:{port}",
        "READINESS_SELF_URL": f"http://127.0.0.1:{port}",
        "READINESS_STATE": f"sqlite:///{tmp_path}/state.db",
    }


def test_check_on_the_default_config_passes_on_a_fresh_machine(
    fresh_env: dict[str, str], tmp_path: Path
) -> None:
    done = run(
        "check",
        "--config",
        str(REPO / "config/readiness.example.yaml"),
        env=fresh_env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "exporter-host: 10/10 passing (score 1.00), READY" in done.stdout
    assert "exporter-host:\nPASS    critical  http" in done.stdout
    assert row(done.stdout, "health-live").startswith("PASS    critical  http ")


def row(table: str, item: str) -> str:
    """The table's row of an item (its id is the fifth column)."""
    return next(line for line in table.splitlines() if line.split()[4:5] == [item])


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f'exporter: {{state: "sqlite:///{tmp_path}/s.db"}}\n' + body)
    return path


FAILING = """
checklists:
  - name: app
    title: App
    sections:
      - name: ops
        items:
          - id: disk
            title: Disk has space
            severity: critical
            disk: {path: /}
            expect: ["free > 0B"]
          - id: impossible
            title: A file that is not there
            file: {path: /nonexistent/readiness-test}
"""


@pytest.mark.parametrize(("fail_under", "code"), [(None, 0), ("1.0", 1), ("0.5", 0), ("0.6", 1)])
def test_fail_under_adds_a_score_floor(tmp_path: Path, fail_under: str | None, code: int) -> None:
    # The failing item is advisory: ready by the rule, so only the floor decides.
    advisory = FAILING.replace(
        "file: {path: /nonexistent", "severity: info\n            file: {path: /nonexistent"
    )
    floor = ("--fail-under", fail_under) if fail_under else ()
    done = run("check", "--no-serve", "--config", str(write(tmp_path, advisory)), *floor)
    assert done.returncode == code, done.stdout + done.stderr
    assert row(done.stdout, "impossible").startswith("FAIL    info      file ")
    assert "condition: exists == true (got false)" in done.stdout
    verdict = (
        "READY" if code == 0 else f"NOT READY (score under --fail-under {float(fail_under or 0):g})"
    )
    assert f"app: 1/2 passing (score 0.50), {verdict}\n" in done.stdout


def test_a_failing_warning_item_makes_check_fail(tmp_path: Path) -> None:
    done = run(
        "check", "--no-serve", "--config", str(write(tmp_path, FAILING)), "--fail-under", "0"
    )
    assert done.returncode == 1
    assert "app: 1/2 passing (score 0.50), NOT READY\n" in done.stdout


def test_check_fails_when_a_critical_item_fails_whatever_the_ratio(tmp_path: Path) -> None:
    config = write(tmp_path, FAILING.replace('expect: ["free > 0B"]', 'expect: ["free > 1000PB"]'))
    done = run("check", "--no-serve", "--config", str(config), "--fail-under", "0")
    assert done.returncode == 1


def test_check_formats(tmp_path: Path) -> None:
    config = str(write(tmp_path, FAILING))
    as_json = json.loads(run("check", "--no-serve", "--config", config, "--format", "json").stdout)
    items = {i["id"]: i for s in as_json["checklists"][0]["sections"] for i in s["items"]}
    assert items["disk"]["passing"] is True
    assert items["impossible"]["reason"] == "condition"
    assert items["impossible"]["failed"] == ["exists == true (got false)"]

    junit = ET.fromstring(
        run("check", "--no-serve", "--config", config, "--format", "junit").stdout
    )
    suite = junit.find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "3"  # the two items and the checklist's verdict
    assert suite.get("failures") == "2"

    markdown = run("check", "--no-serve", "--config", config, "--format", "markdown").stdout
    assert markdown.startswith("# App\n")
    assert "- [x] Disk has space" in markdown
    assert "- [ ] A file that is not there" in markdown


def test_check_rejects_an_unknown_checklist(tmp_path: Path) -> None:
    done = run(
        "check", "--no-serve", "--config", str(write(tmp_path, FAILING)), "--checklist", "nope"
    )
    assert done.returncode == 2
    assert "no checklist named nope" in done.stderr


def test_validate_reports_every_error_and_exits_2() -> None:
    path = REPO / "tests/unit/testdata/invalid-several.yml"
    done = run("validate", "--config", str(path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 5
    assert lines[2].startswith(f"{path}:10: item health: severity:")


def test_validate_ok_and_config_errors_exit_2_for_every_verb(tmp_path: Path) -> None:
    done = run("validate", "--config", str(REPO / "config/readiness.example.yaml"))
    assert done.returncode == 0
    assert "OK (1 checklist, 10 items)" in done.stdout
    missing = str(tmp_path / "missing.yaml")
    for verb in ("validate", "check", "serve"):
        done = run(verb, "--config", missing)
        assert done.returncode == 2, verb
        assert "cannot read config" in done.stderr


def verdict_printed(fmt: str, output: str) -> bool:
    """Whether `check`'s output, read as its format's consumer reads it, says ready."""
    if fmt == "table":
        return output.rstrip().endswith(", READY")
    if fmt == "json":
        ready = json.loads(output)["ready"]
        assert isinstance(ready, bool)
        return ready
    if fmt == "markdown":
        summary = next(line for line in output.splitlines() if line.startswith("Score "))
        return "not ready" not in summary and ", ready" in summary
    suite = ET.fromstring(output).find("testsuite")
    assert suite is not None
    return suite.get("failures") == "0"


VERDICTS = {
    # name: (severity of the item whose file is missing, ready_min_score, --fail-under, ready)
    "ready-with-a-failing-info-item": ("info", None, None, True),
    "a-failing-warning-item": ("warning", None, None, False),
    "under-ready-min-score": ("info", "0.9", None, False),
    "under-fail-under": ("info", None, "0.9", False),
}


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "junit"])
@pytest.mark.parametrize("case", list(VERDICTS))
def test_checks_printed_verdict_and_exit_code_agree(tmp_path: Path, case: str, fmt: str) -> None:
    severity, min_score, fail_under, ready = VERDICTS[case]
    (tmp_path / "present").write_text("x")
    floor = f"\n    ready_min_score: {min_score}" if min_score else ""
    config = write(
        tmp_path,
        f"""
checklists:
  - name: app{floor}
    sections:
      - name: ops
        items:
          - id: present
            title: A file that is there
            severity: critical
            file: {{path: "{tmp_path}/present"}}
          - id: missing
            title: A file that is not there
            severity: {severity}
            file: {{path: "{tmp_path}/missing"}}
""",
    )
    extra = ("--fail-under", fail_under) if fail_under else ()
    done = run("check", "--no-serve", "--config", str(config), "--format", fmt, *extra)
    assert done.returncode in (0, 1), done.stderr
    assert verdict_printed(fmt, done.stdout) is ready
    assert (done.returncode == 0) is ready
