"""Each loaded config masks its own secrets: every verb builds its redactor from the config it
loaded, and each Daemon owns one. Runs verbs of one config after another's in the same process
(the CLI's `main`), so a process-wide redactor, overwritten by the last load, would show."""

from __future__ import annotations

import secrets
from html import escape
from pathlib import Path

import pytest

from exporter.cli import EXIT_NOT_READY, EXIT_READY, EXIT_RUNTIME, main
from exporter.daemon import Daemon
from exporter.evaluate import evaluate
from exporter.exposition import Exposition
from exporter.loader import load_config
from exporter.redact import MASK
from exporter.web.pages import status_page
from exporter.web.status import status_document
from tests.support.services import PG_HOST, PG_PORT, pg_database

# HTML-special characters on purpose: a page shows them escaped, and that form is masked too.
A_SECRET = f'SntlA&<b>"{secrets.token_hex(6)}'
B_SECRET = f"SntlB{secrets.token_hex(6)}"
ROLE_SECRET = f"sntlrole{secrets.token_hex(6)}"

CONFIG = """
exporter:
  state: "{state}"
checklists:
  - name: {name}
    title: "Launch of ${{{var}}}"
    sections:
      - name: work
        title: "Work on ${{{var}}}"
        items:
          - id: echo
            title: "Rotate ${{{var}}} soon"
            command:
              argv: [sh, -c, 'printf %s "$T"']
              env: {{T: "${{{var}}}"}}
            expect: ["stdout == ''"]
          - id: sign-off
            title: "Signed off with ${{{var}}}"
            manual: {{}}
"""


def write(tmp_path: Path, name: str, var: str, state: str = "") -> str:
    path = tmp_path / f"{name}.yaml"
    state = state or f"sqlite:///{tmp_path}/{name}.db"
    path.write_text(CONFIG.format(name=name, var=var, state=state), encoding="utf-8")
    return str(path)


@pytest.fixture
def configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv("ISO_A_TOKEN", A_SECRET)
    monkeypatch.setenv("ISO_B_TOKEN", B_SECRET)
    return write(tmp_path, "a", "ISO_A_TOKEN"), write(tmp_path, "b", "ISO_B_TOKEN")


def forms(secret: str) -> list[str]:
    return [secret, escape(secret), escape(secret, quote=False), secret.replace('"', '\\"')]


def shown(text: str, secret: str) -> list[str]:
    return [form for form in forms(secret) if form in text]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "junit"])
def test_check_masks_its_config_secrets_after_another_config_ran(
    configs: tuple[str, str], capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    a, b = configs
    assert run(capsys, "check", "--config", b, "--no-serve")[0] == EXIT_NOT_READY
    code, output = run(capsys, "check", "--config", a, "--no-serve", "--format", fmt)
    assert code == EXIT_NOT_READY
    assert shown(output, A_SECRET) == []
    assert MASK in output or escape(MASK) in output
    # The echo ran and its stdout (the secret) was judged before it was masked.
    assert "stdout" in output


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_report_masks_titles_and_evidence_in_every_written_form(
    configs: tuple[str, str], capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    a, b = configs
    run(capsys, "check", "--config", a, "--no-serve")
    run(capsys, "check", "--config", b, "--no-serve")
    code, output = run(capsys, "report", "--config", a, "--format", fmt)
    assert code == EXIT_READY
    assert shown(output, A_SECRET) == []
    assert "Rotate" in output and "Signed off with" in output
    assert output.count(MASK if fmt == "markdown" else escape(MASK)) >= 2


def test_attest_prints_nothing_of_its_config_secrets(
    configs: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = configs
    run(capsys, "validate", "--config", b)
    code, output = run(capsys, "attest", "--config", a, "a", "sign-off", "--by", A_SECRET)
    assert code == EXIT_READY
    assert output.startswith(f"attested a/sign-off by {MASK} at ")
    assert shown(output, A_SECRET) == []


def test_import_masks_the_password_of_the_state_it_attests_into(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`import --check-state` names the state it wrote to; its URL's password is masked."""
    document = tmp_path / "launch.md"
    document.write_text("# Launch\n\n- [x] On-call rotation established\n")
    password = f"Sntlpw{secrets.token_hex(6)}"
    with pg_database(prefix="i14core") as database:
        state = f"postgresql://postgres:{password}@{PG_HOST}:{PG_PORT}/{database}"
        monkeypatch.setenv("READINESS_STATE", state)
        output = str(tmp_path / "launch.yaml")
        code, shown = run(capsys, "import", str(document), "-o", output, "--check-state")
    assert code == EXIT_READY, shown
    assert f"postgresql://postgres:{MASK}@" in shown
    assert "1 ticked manual items attested by import" in shown
    assert password not in shown


@pytest.mark.parametrize("verb", ["attest", "report", "check"])
def test_a_store_error_naming_a_secret_is_masked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    verb: str,
) -> None:
    """PostgreSQL's own message quotes the role, here a secret: the store the verb opened was
    given the verb's redactor."""
    monkeypatch.setenv("ISO_ROLE_TOKEN", ROLE_SECRET)
    monkeypatch.setenv("ISO_A_TOKEN", A_SECRET)
    state = f"postgresql://${{ISO_ROLE_TOKEN}}@{PG_HOST}:{PG_PORT}/postgres"
    config = write(tmp_path, "a", "ISO_A_TOKEN", state)
    argv = {
        "attest": ["attest", "--config", config, "a", "sign-off", "--by", "ann"],
        "report": ["report", "--config", config],
        "check": ["check", "--config", config, "--no-serve"],
    }[verb]
    code, output = run(capsys, *argv)
    assert code == EXIT_RUNTIME
    assert "role" in output and MASK in output
    assert ROLE_SECRET not in output


async def test_two_daemons_in_one_process_keep_their_own_redactors(
    configs: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    a_path, b_path = configs
    a, b = Daemon(load_config(a_path)), Daemon(load_config(b_path))
    assert a.redactor is not b.redactor
    for daemon in (a, b):
        await daemon.start(schedule=False)
    try:
        await a.run_all()
        await b.run_all()
        # B reloads with a new secret: A's redactor, its results and its pages are untouched.
        monkeypatch.setenv("ISO_B_TOKEN", f"SntlC{secrets.token_hex(6)}")
        assert await b.reload()
        await a.run_all()
        now = a.clock.now()
        views = evaluate(a.config, a.states(), now)
        page = status_page(views, now, attest=True, redactor=a.redactor)
        document = str(status_document(views, now, a.redactor))
        stored = str(a.states())
        metrics = Exposition(a, process=False).render("")[0].decode()
        assert 'title="Rotate <redacted> soon"' in metrics
        for text in (page, document, stored, metrics):
            assert shown(text, A_SECRET) == []
        assert escape(MASK) in page and MASK in document and MASK in stored
        assert a.redactor.text(f"x {B_SECRET} y") == f"x {B_SECRET} y"
        assert b.redactor.text(A_SECRET) == A_SECRET
    finally:
        await a.stop()
        await b.stop()
