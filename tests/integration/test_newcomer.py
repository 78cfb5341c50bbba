"""The newcomer's path through the CLI and HTTP (issue 18): check for terminals and CI, explain,
completion, an import that never loses edits, attestations that hold for what was attested,
self-probes that follow --listen, and the log level of an item that starts failing."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest
import yaml

from tests.support.cli import run_cli as run
from tests.support.exporter import Exporter, wait_for
from tests.support.servers import HttpTarget, free_port

REPO = Path(__file__).parents[2]


def write(tmp_path: Path, items: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        f'exporter: {{state: "sqlite:///{tmp_path}/s.db"}}\n'
        "checklists:\n  - name: app\n    sections:\n      - name: ops\n        items:\n" + items
    )
    return path


ONE_PASSING_ONE_FAILING = """\
          - {id: disk, title: Disk has space, disk: {path: /}, expect: ["free > 0B"]}
          - {id: impossible, title: A file that is not there, file: {path: /nonexistent/x}}
"""


def test_only_failing_shows_what_fails_and_still_judges_every_item(tmp_path: Path) -> None:
    config = write(tmp_path, ONE_PASSING_ONE_FAILING)
    table = run("check", "--no-serve", "--config", str(config), "--only-failing")
    assert table.returncode == 1, table.stderr
    ids = [
        line.split()[4] for line in table.stdout.splitlines() if line.startswith(("PASS", "FAIL"))
    ]
    assert ids == ["impossible"]
    assert "app: 1/2 passing (score 0.50), NOT READY" in table.stdout
    done = run("check", "--no-serve", "--config", str(config), "--only-failing", "--format", "json")
    [section] = json.loads(done.stdout)["checklists"][0]["sections"]
    assert [i["id"] for i in section["items"]] == ["impossible"]
    assert json.loads(done.stdout)["checklists"][0]["score"] == 0.5


def test_output_file_gets_the_format_and_the_terminal_a_summary(tmp_path: Path) -> None:
    config = write(tmp_path, ONE_PASSING_ONE_FAILING)
    report = tmp_path / "readiness.xml"
    done = run(
        "check", "--no-serve", "--config", str(config), "--format", "junit", "-o", str(report)
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == (
        f"app: 1/2 passing (score 0.50), NOT READY; 1 failing\njunit written to {report}\n"
    )
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "2"


def test_the_table_fits_100_columns_and_other_formats_keep_the_full_text(tmp_path: Path) -> None:
    long_id = "a-very-long-item-id-" + "x" * 60
    missing = "/nonexistent/" + "deep/" * 30 + "file"
    config = write(
        tmp_path,
        f"          - {{id: {long_id}, title: Long, file: {{path: {missing}}},"
        ' expect: ["exists == true", "size > 1MiB"]}\n',
    )
    table = run("check", "--no-serve", "--config", str(config))
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, table.stdout
    [row] = [line.split() for line in lines if line.startswith("FAIL")]
    assert row[4].startswith("a-very-long-item-id-x") and row[4].endswith("…")
    assert any(line.endswith("…") for line in lines if line.startswith("FAIL"))
    done = run("check", "--no-serve", "--config", str(config), "--format", "json")
    [item] = json.loads(done.stdout)["checklists"][0]["sections"][0]["items"]
    assert item["id"] == long_id and "size > 1MiB" in " ".join(item["failed"])


@pytest.mark.parametrize("ratio", ["5", "-0.1", "1.01", "half", "nan"])
def test_fail_under_outside_0_to_1_is_a_usage_error(tmp_path: Path, ratio: str) -> None:
    config = write(tmp_path, ONE_PASSING_ONE_FAILING)
    done = run("check", "--no-serve", "--config", str(config), "--fail-under", ratio)
    assert done.returncode == 2
    assert f"argument --fail-under: '{ratio}' is not a ratio from 0 to 1" in done.stderr
    assert done.stdout == "" and not (tmp_path / "s.db").exists()  # nothing was run


def test_explain_says_what_an_item_checks_what_it_saw_and_why_it_fails(tmp_path: Path) -> None:
    target = HttpTarget()
    target.start()
    try:
        config = write(
            tmp_path,
            f"""\
          - id: health
            title: Health answers
            severity: critical
            runbook_url: https://wiki.example.com/health
            http: {{url: "{target.url}/health"}}
            expect: ["status == 200", "duration < 1ms", "body contains 'nope'"]
          - {{id: signoff, title: Security sign-off, manual: {{}}}}
""",
        )
        assert run("check", "--no-serve", "--config", str(config)).returncode == 1
    finally:
        target.stop()
    for by in ("alice", "bob"):
        assert run("attest", "--config", str(config), "app", "signoff", "--by", by).returncode == 0
    done = run("explain", "--config", str(config), "app/health")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("app/health: Health answers\n")
    assert "  severity      critical\n" in out
    assert f'  probe         http: url="{target.url}/health"\n' in out
    assert "  runs          every 1min, timeout 10s\n" in out
    assert "  state         FAILING: condition (the probe ran; a condition does not hold)" in out
    assert "    ✓ status == 200 (got 200)\n" in out
    assert "    ✗ duration < 1ms (got " in out
    assert "    ✗ body contains 'nope' (got " in out
    assert "  last run      " in out and "  last success  never\n" in out
    assert "  runbook       https://wiki.example.com/health\n" in out

    manual = run("explain", "--config", str(config), "app/sign…").stdout  # a cut id will do
    assert "app/signoff: Security sign-off\n" in manual
    assert "  state         PASSING: ok" in manual
    assert "  attestation   by bob at " in manual
    assert "  attested before\n    by alice at " in manual

    wrong = run("explain", "--config", str(config), "app/helth")
    assert wrong.returncode == 2
    assert "checklist 'app' has no item 'helth' (did you mean health?)" in wrong.stderr
    assert run("explain", "--config", str(config), "app").returncode == 2


def test_explain_shows_the_last_state_changes_from_the_history(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.write_text("up")
    config = write(
        tmp_path,
        f"          - {{id: flag, title: Flag file, interval: 1s, file: {{path: {flag}}}}}\n",
    )
    before = run("explain", "--config", str(config), "app/flag")
    assert before.returncode == 0, before.stderr
    assert "  changes       none recorded yet (serve records them)\n" in before.stdout

    def states() -> list[str]:
        got = exporter.get("/api/v1/history", params={"checklist": "app", "item": "flag"})
        return [r["state"] for r in got.json()["history"] if r["state"] in ("passing", "failing")]

    exporter = Exporter(config)
    exporter.start()
    try:
        wait_for(lambda: states() == ["passing"], 15, "the first state", exporter)
        for n in range(2, 7):  # six changes in all: explain shows the last five
            if flag.exists():
                flag.unlink()
            else:
                flag.write_text("up")
            wait_for(lambda n=n: len(states()) == n, 15, f"change {n}", exporter)
    finally:
        exporter.stop()
    out = run("explain", "--config", str(config), "app/flag").stdout
    lines = out.splitlines()
    start = lines.index("  changes       newest first")
    shown = list(itertools.takewhile(lambda line: line.startswith("    "), lines[start + 1 :]))
    # Five, newest first: the first change (passing) is left out.
    assert [line.split(" at ")[0] for line in shown] == [
        "    failing (condition)",
        "    passing",
        "    failing (condition)",
        "    passing",
        "    failing (condition)",
    ]
    assert all(
        re.search(r" at 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\)$", x) for x in shown
    )


def test_bash_completion_completes_verbs_flags_and_choices(tmp_path: Path) -> None:
    script = tmp_path / "completion.bash"
    done = run("completion", "bash")
    assert done.returncode == 0
    script.write_text(done.stdout)

    def complete(*words: str) -> list[str]:
        line = " ".join(f"'{w}'" for w in words)
        out = subprocess.run(
            [
                "bash",
                "-c",
                f"source {script}; COMP_WORDS=(readiness-exporter {line}); "
                f"COMP_CWORD={len(words)}; _readiness_exporter; "
                "printf '%s\\n' \"${COMPREPLY[@]}\"",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.split()

    assert complete("ex") == ["explain"]
    assert complete("check", "--only") == ["--only-failing"]
    assert complete("check", "--format", "j") == ["json", "junit"]
    assert complete("import", "x.md", "--up") == ["--update"]
    assert complete("completion", "z") == ["zsh"]
    zsh = run("completion", "zsh").stdout
    assert zsh.startswith("#compdef readiness-exporter\n") and "bashcompinit" in zsh


def test_zsh_completion_completes_verbs_flags_and_choices_in_a_real_zsh(tmp_path: Path) -> None:
    zsh = shutil.which("zsh")
    assert zsh, "zsh is missing: scripts/test installs Debian's zsh"
    script = tmp_path / "completion.zsh"
    script.write_text(run("completion", "zsh").stdout)
    assert subprocess.run([zsh, "-n", str(script)], capture_output=True).returncode == 0
    registered = subprocess.run(
        [
            zsh,
            "-f",
            "-i",
            "-c",
            f"autoload -U compinit && compinit -u -D; source {script};"
            " print -r -- $_comps[readiness-exporter]",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert registered.stdout.strip(), registered.stderr

    def complete(line: str) -> list[str]:
        done = subprocess.run(
            [zsh, "-f", str(REPO / "tests/support/complete.zsh"), str(script), line],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        offered = done.stdout.split("\0")
        assert len(offered) >= 3, done.stdout + done.stderr  # the hooks ran: a completion
        return sorted(
            hit.removeprefix("<hit>").strip()
            for hit in offered[1].splitlines()
            if hit.startswith("<hit>")
        )

    assert complete("readiness-exporter ex") == ["explain"]
    assert "check" in complete("readiness-exporter ")
    assert complete("readiness-exporter check --only") == ["--only-failing"]
    assert complete("readiness-exporter check --format j") == ["json", "junit"]
    assert complete("readiness-exporter import x.md --up") == ["--update"]
    assert complete("readiness-exporter completion z") == ["zsh"]
    (tmp_path / "stock.yaml").write_text("")
    assert complete("readiness-exporter validate --config sto") == ["stock.yaml"]


def test_a_critical_item_that_starts_failing_logs_a_warning(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.write_text("up")
    config = write(
        tmp_path,
        f"""\
          - {{id: flag, title: Flag file, severity: critical, interval: 1s, file: {{path: {flag}}}}}
          - {{id: never, title: Never there, severity: info, interval: 1s,
             file: {{path: /nonexistent/y}}}}
""",
    )
    exporter = Exporter(config, env={"READINESS_LOG_FORMAT": "json"})
    exporter.start()
    try:
        wait_for(lambda: exporter.value("readiness_item_passing", item="flag") == 1, 10, "pass")
        flag.unlink()

        def failures() -> list[dict[str, object]] | None:
            events = [json.loads(line) for line in exporter.output().splitlines() if "{" in line]
            found = [e for e in events if e.get("event") == "probe_failed" and e["item"] == "flag"]
            return found if len(found) >= 2 else None

        first, second, *_ = wait_for(failures, 15, "two failing runs", exporter)
    finally:
        exporter.stop()
    assert (first["level"], first["severity"]) == ("warning", "critical")
    assert second["level"] == "info"  # still failing: no longer news
    events = [json.loads(line) for line in exporter.output().splitlines() if "{" in line]
    advisory = [e for e in events if e.get("event") == "probe_failed" and e["item"] == "never"]
    assert advisory and {e["level"] for e in advisory} == {"info"}


# --- import never loses work ---------------------------------------------------------------
DOCUMENT = """\
# Shop

## Ops
- [ ] `/health` endpoint returns 200
- [ ] On-call rotation established
- [ ] Runbook written

## Daily
- [ ] Review error logs
"""


def test_import_refuses_to_overwrite_unless_forced_and_names_the_file_written(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "shop.md"
    doc.write_text(DOCUMENT)
    (tmp_path / "configs").mkdir()
    config = Path("configs/my-shop.yaml")  # relative to tmp_path, where import runs
    assert run("import", str(doc), "-o", str(config), cwd=tmp_path).returncode == 0
    config = tmp_path / config
    header = config.read_text()
    assert "#   readiness-exporter validate --config configs/my-shop.yaml\n" in header
    assert "#   readiness-exporter import shop.md --update configs/my-shop.yaml" in header
    assert "--config shop.yaml" not in header

    config.write_text(config.read_text().replace("Runbook written", "Runbook written (edited)"))
    again = run("import", str(doc), "-o", str(config))
    assert again.returncode == 2
    assert f"{config} exists: import would replace it and lose its edits" in again.stderr
    assert f"--update {config}" in again.stderr and "--force" in again.stderr
    assert "(edited)" in config.read_text()
    assert run("import", str(doc), "-o", str(config), "--force").returncode == 0
    assert "(edited)" not in config.read_text()


def test_import_update_keeps_hand_edits_adds_new_items_and_lists_removed_ones(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "shop.md"
    doc.write_text(DOCUMENT)
    config = tmp_path / "shop.yaml"
    assert run("import", str(doc), "-o", str(config)).returncode == 0
    text = config.read_text()
    for old, new in [
        ("state: sqlite:///./shop-state.db", f"state: sqlite:///{tmp_path}/mine.db"),
        ("    title: Shop\n", "    title: Shop\n    ready_min_score: 0.5\n"),
        (
            "          - id: on-call-rotation-established  # imported\n"
            "            title: On-call rotation established\n",
            "          # owner: the ops team\n"
            "          - id: on-call-rotation-established  # imported\n"
            "            title: On-call rotation established\n"
            "            severity: critical\n"
            "            runbook_url: https://wiki.example.com/oncall\n",
        ),
    ]:
        assert old in text
        text = text.replace(old, new)
    config.write_text(text)
    doc.write_text(DOCUMENT.replace("- [ ] Runbook written", "- [ ] Backups verified"))

    done = run("import", str(doc), "--update", str(config))
    assert done.returncode == 0, done.stderr
    assert f"updated {config}: 3 items kept as the file had them" in done.stderr
    assert "added (1): backups-verified" in done.stderr
    assert (
        f"no longer in the document (1): runbook-written; kept at the end of {config},"
        " commented out" in done.stderr
    )
    updated = config.read_text()
    doc_yaml = yaml.safe_load(updated)
    assert doc_yaml["exporter"]["state"] == f"sqlite:///{tmp_path}/mine.db"
    [checklist] = doc_yaml["checklists"]
    assert checklist["name"] == "shop" and checklist["ready_min_score"] == 0.5
    items = {i["id"]: i for s in checklist["sections"] for i in s["items"]}
    assert list(items) == [
        "health-endpoint-returns-200",
        "on-call-rotation-established",
        "backups-verified",
        "review-error-logs",
    ]
    oncall = items["on-call-rotation-established"]
    assert (oncall["severity"], oncall["runbook_url"]) == (
        "critical",
        "https://wiki.example.com/oncall",
    )
    assert (
        "          # owner: the ops team\n          - id: on-call-rotation-established  # imported"
        in updated
    )
    assert (
        "# - id: runbook-written  # imported\n#   title: Runbook written\n#   manual: {}" in updated
    )
    assert run("validate", "--config", str(config)).returncode == 0

    # Again: nothing changes, the removed item stays listed once. With --prune it goes.
    assert run("import", str(doc), "--update", str(config)).returncode == 0
    assert config.read_text() == updated
    pruned = run("import", str(doc), "--update", str(config), "--prune")
    assert "runbook-written" not in config.read_text()
    assert "dropped (--prune)" not in pruned.stderr  # nothing left to drop: listed before
    assert yaml.safe_load(config.read_text())["checklists"] == doc_yaml["checklists"]


def test_import_update_leaves_items_added_by_hand_where_they_are(tmp_path: Path) -> None:
    doc = tmp_path / "shop.md"
    doc.write_text(DOCUMENT)
    config = tmp_path / "shop.yaml"
    assert run("import", str(doc), "-o", str(config)).returncode == 0
    text = config.read_text()
    mine = (
        "          # ours, not the document's\n"
        "          - id: status-page-linked\n"
        "            title: Status page linked from the wiki\n"
        "            manual: {}\n"
    )
    first_daily = "          - id: review-error-logs"
    assert "            manual: {}\n          - id: runbook-written" in text
    assert first_daily in text
    text = text.replace(
        "          - id: runbook-written", mine + "          - id: runbook-written"
    ).replace(
        first_daily,
        "          - {id: coffee, title: Coffee machine cleaned, manual: {}}\n" + first_daily,
    )
    text += (
        "\n      - name: extras\n        title: Extras\n        items:\n"
        "          - id: team-photo\n            title: Team photo taken\n"
        "            manual: {}\n"
    )
    config.write_text(text)
    assert run("validate", "--config", str(config)).returncode == 0
    doc.write_text(DOCUMENT.replace("- [ ] Runbook written", "- [ ] Backups verified"))

    for prune in ([], ["--prune"]):
        done = run("import", str(doc), "--update", str(config), *prune)
        assert done.returncode == 0, done.stderr
        removed = [line for line in done.stderr.splitlines() if "no longer in the" in line]
        # The second run: runbook-written was listed (and commented out) by the first.
        assert removed == (
            []
            if prune
            else [
                "  no longer in the document (1): runbook-written; kept at the end of"
                f" {config}, commented out"
            ]
        )
        assert (
            "yours (not from the document), left as they are (3):"
            " status-page-linked, coffee, team-photo" in done.stderr
        )
        updated = config.read_text()
        sections = yaml.safe_load(updated)["checklists"][0]["sections"]
        assert [(s["name"], [i["id"] for i in s["items"]]) for s in sections] == [
            (
                "ops",
                [
                    "health-endpoint-returns-200",
                    "on-call-rotation-established",
                    "status-page-linked",
                    "backups-verified",
                ],
            ),
            ("daily", ["coffee", "review-error-logs"]),
            ("extras", ["team-photo"]),
        ]
        assert mine in updated  # the lines as typed, the comment above included
        assert "# - id: status-page-linked" not in updated
        assert run("validate", "--config", str(config)).returncode == 0
    assert "runbook-written" not in config.read_text()


# --- attestations attest what was attested ---------------------------------------------------
MANUAL = """\
          - id: signoff
            title: {title}
            severity: {severity}
            manual: {{}}
          - {{id: coffee, title: Coffee machine cleaned, manual: {{}}, every: 1s, grace: 1s}}
"""


def test_an_attestation_survives_severity_and_runbook_changes_not_a_new_title(
    tmp_path: Path,
) -> None:
    def config(
        title: str = "Security sign-off", severity: str = "warning", extra: str = ""
    ) -> Path:
        return write(tmp_path, MANUAL.format(title=title, severity=severity) + extra)

    path = config()
    assert run("attest", "--config", str(path), "app", "signoff", "--by", "alice").returncode == 0
    config(severity="critical", extra="          - {id: other, title: Other, manual: {}}\n")
    report = run("report", "--config", str(path)).stdout
    assert "- [x] Security sign-off — attested by alice" in report

    config(title="Security and privacy sign-off", severity="critical")
    for out in (
        run("report", "--config", str(path)).stdout,
        run("check", "--no-serve", "--config", str(path)).stdout,
        run("explain", "--config", str(path), "app/signoff").stdout,
    ):
        assert "definition changed since the attestation: attest again" in out
    exporter = Exporter(path)
    exporter.start()
    try:
        doc = exporter.get("/status").json()
        page = exporter.get("/status?format=html").text
    finally:
        exporter.stop()
    [item] = [i for i in doc["checklists"][0]["sections"][0]["items"] if i["id"] == "signoff"]
    assert (item["passing"], item["reason"]) == (False, "not_attested")
    assert item["message"].startswith("definition changed since the attestation: attest again")
    assert "(attested by alice at " in item["message"]
    assert item["attestation"]["current"] is False
    assert "definition changed since the attestation: attest again" in page


def test_a_lapsed_item_says_when_it_was_attested_and_when_it_lapsed(tmp_path: Path) -> None:
    path = write(tmp_path, MANUAL.format(title="Sign-off", severity="warning"))
    assert run("attest", "--config", str(path), "app", "coffee", "--by", "bob").returncode == 0
    time.sleep(2.2)
    out = run("explain", "--config", str(path), "app/coffee").stdout
    assert "  message       last attested by bob at " in out and "; lapsed at " in out
    assert "  lapsed        at " in out
    report = run("report", "--config", str(path)).stdout
    line = next(line for line in report.splitlines() if "Coffee machine cleaned" in line)
    assert "not attested: last attested by bob at" in line and "lapsed at" in line


# --- defaults that follow the user -----------------------------------------------------------
def test_self_probes_of_the_default_config_follow_listen(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("READINESS_")}
    env["READINESS_STATE"] = f"sqlite:///{tmp_path}/state.db"
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "serve",
            "--config",
            str(REPO / "config/readiness.example.yaml"),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def self_probes() -> dict[str, object] | None:
        try:
            response = httpx.get(f"{url}/status", timeout=2)
            doc = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if response.status_code != 200:
            return None  # 503 while the config loads (only /health/live answers then)
        items = {i["id"]: i for s in doc["checklists"][0]["sections"] for i in s["items"]}
        probes = {k: items[k] for k in ("health-live", "metrics-endpoint")}
        return probes if all(p["reason"] != "not_run" for p in probes.values()) else None

    try:
        probes = wait_for(self_probes, 30, "the self-probes to run")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
    for item in probes.values():
        assert item["passing"], item  # type: ignore[index]
        assert ":9840" not in json.dumps(item)


def test_check_on_the_default_config_probes_the_address_it_serves_on(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("READINESS_")}
    env |= {
        "READINESS_LISTEN": f"127.0.0.1:{port}",
        "READINESS_STATE": f"sqlite:///{tmp_path}/s.db",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "check",
            "--config",
            str(REPO / "config/readiness.example.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    health = next(line for line in done.stdout.splitlines() if " health-live " in f"{line} ")
    assert health.startswith("PASS"), done.stdout
    assert "exporter-host: 10/10 passing" in done.stdout


def test_a_critical_ping_item_whose_job_starts_failing_logs_a_warning(tmp_path: Path) -> None:
    token = "attest-secret-0123456789abcdef"
    config = tmp_path / "c.yaml"
    config.write_text(
        f'exporter: {{state: "sqlite:///{tmp_path}/s.db",'
        " api_tokens: [{name: cron, token_env: NEWCOMER_TOKEN, roles: [attest]}]}\n"
        "checklists:\n  - name: jobs\n    sections:\n      - name: nightly\n        items:\n"
        "          - {id: backup, title: Backups run, severity: critical, ping: {}}\n"
    )
    exporter = Exporter(config, env={"READINESS_LOG_FORMAT": "json", "NEWCOMER_TOKEN": token})
    exporter.start()
    try:
        for status, code in (("success", 0), ("fail", 1), ("fail", 1)):
            answer = httpx.post(
                f"{exporter.url}/api/v1/pings",
                json={"checklist": "jobs", "item": "backup", "status": status, "exit_code": code},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert answer.status_code == 201, answer.text
    finally:
        exporter.stop()
    events = [json.loads(line) for line in exporter.output().splitlines() if "{" in line]
    finished = [e for e in events if e.get("event") == "ping_finished"]
    assert [(e["passing"], e["level"]) for e in finished] == [
        (True, "info"),
        (False, "warning"),  # it starts failing
        (False, "info"),  # it goes on failing
    ]
