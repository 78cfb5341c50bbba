"""Every `sh` block of the README (and the marked quick-starts of docs/) run as a user would, on
a fresh copy of the checkout, so a command, a flag or a figure in the docs cannot drift from the
code. A line `#> text` in a block is a line the commands above it print (`...` at either end:
anything there). The exporter's address (9840) is moved to a free port, the only change made to
a block."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

REPO = Path(__file__).parents[2]
RUN_UNTIL_STOPPED = "<!-- test: runs until stopped; must answer /health -->"
NOT_RUN = "<!-- test: not run"
RUN_IN_DOCS = "<!-- test: run -->"
_FENCE = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    text: str
    marker: str

    @property
    def expected(self) -> list[str]:
        return [line[2:].strip() for line in self.text.splitlines() if line.startswith("#>")]

    def __str__(self) -> str:
        return f"{self.document}:{self.line}"


def blocks(document: str) -> list[Block]:
    """The document's `sh` blocks that run: in the README every one not marked `not run`, in
    docs/ those marked `run`."""
    text = (REPO / document).read_text()
    out = []
    for match in _FENCE.finditer(text):
        before = [line for line in text[: match.start()].splitlines() if line.strip()]
        marker = before[-1].strip() if before and before[-1].startswith("<!--") else ""
        if marker.startswith(NOT_RUN):
            continue
        if document != "README.md" and marker != RUN_IN_DOCS:
            continue
        out.append(Block(document, text[: match.start()].count("\n") + 2, match[1], marker))
    return out


DOCUMENTS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
RUN = [d for d in DOCUMENTS if blocks(d)]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files git tracks (and new ones not ignored), as a fresh clone has them: no .venv,
    no state, nothing from outside the repository."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the README's commands run on a clone")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    target = tmp_path_factory.mktemp("clone")
    for name in filter(None, (n.decode() for n in listed)):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def environment(clone: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("READINESS_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{clone / '.venv/bin'}:{env.get('PATH', '')}"
    env["READINESS_LISTEN"] = f"127.0.0.1:{port}"
    return env


def run_block(block: Block, clone: Path) -> None:
    port = free_port()
    script = block.text.replace("9840", str(port))
    env = environment(clone, port)
    if block.marker == RUN_UNTIL_STOPPED:
        _run_until_stopped(block, script, clone, env, port)
        return
    done = subprocess.run(
        [
            "bash",
            "-c",
            "set -e -o pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script,
        ],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, in the order a terminal shows it
        text=True,
        timeout=600,
    )
    output = done.stdout
    assert done.returncode == 0, f"{block} exited {done.returncode}:\n{script}\n---\n{output}"
    missing = unprinted(block.expected, output)
    assert missing is None, f"{block}: no line {missing!r} (in this order) in:\n{output}"


def unprinted(expected: list[str], output: str) -> str | None:
    """The first of `expected` that is not a whole line of `output` (spaces around it aside)
    after the lines matched before it; `...` at either end of one stands for anything."""
    lines = iter(line.strip() for line in output.splitlines())
    for text in expected:
        pattern = re.escape(text.removeprefix("...").removesuffix("..."))
        pattern = (".*" if text.startswith("...") else "") + pattern
        pattern += ".*" if text.endswith("...") and len(text) > 3 else ""
        if not any(re.fullmatch(pattern, line) for line in lines):
            return text
    return None


def test_an_expected_line_is_a_whole_line_of_the_output_in_order() -> None:
    output = "stock.yaml: 145 items\n  1450\n  SUCCESS: 19 rules found\n"
    assert unprinted(["stock.yaml: 145 items", "1450", "SUCCESS..."], output) is None
    assert unprinted(["...145 items"], output) is None
    for wrong in (["145"], ["stock.yaml: 146 items"], ["SUCCESS"], ["1450", "...145 items"]):
        assert unprinted(wrong, output) == wrong[-1]


def _run_until_stopped(
    block: Block, script: str, clone: Path, env: dict[str, str], port: int
) -> None:
    log = clone / f"block-{block.line}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", script],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 600  # the first block installs the package
    answered = False
    try:
        while time.monotonic() < deadline and proc.poll() is None and not answered:
            try:
                answered = (
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
                )
            except httpx.HTTPError:
                time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert answered, f"{block} did not answer /health:\n{log.read_text(errors='replace')[-3000:]}"


def test_the_readme_has_the_two_commands_first_and_stays_short() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    first = blocks("README.md")[0]
    assert (
        first.marker == RUN_UNTIL_STOPPED
        and "serve --config config/readiness.example.yaml" in first.text
    )
    assert "```sh\n./scripts/test\n```" in text
    assert "exec ./scripts/test" in (REPO / ".ci/run").read_text()


@pytest.mark.parametrize("document", RUN)
def test_every_shell_block_runs_and_prints_what_it_says(clone: Path, document: str) -> None:
    if not (clone / ".venv/bin/readiness-exporter").exists() and document != "README.md":
        # The README's first block installs the package; a docs page run alone does it here.
        subprocess.run(
            ["bash", "-c", "python3 -m venv .venv && .venv/bin/pip install -q -e ."],
            cwd=clone,
            check=True,
            timeout=900,
        )
    for block in blocks(document):
        run_block(block, clone)


def test_every_readiness_variable_is_in_the_one_table() -> None:
    from exporter.config import ExporterSettings

    table = (REPO / "docs/config.md").read_text().split("## Environment variables", 1)[1]
    table = table.split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(READINESS_[A-Z_]+)`", table, re.MULTILINE))
    fields = {f"READINESS_{name.upper()}" for name in ExporterSettings.model_fields}
    sources = [*(REPO / "exporter").rglob("*.py"), *(REPO / "config").rglob("*.yaml")]
    read = {v for p in sources for v in re.findall(r"READINESS_[A-Z_]+[A-Z]", p.read_text())}
    # Names a config gives its tokens (`token_env: READINESS_ONCALL_TOKEN`) are the config's own.
    read -= {"READINESS_ONCALL_TOKEN", "READINESS_ADMIN_TOKEN", "READINESS_READ_TOKEN"}
    assert fields | read <= documented, sorted((fields | read) - documented)


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as -."""
    headings = re.findall(r"^#{1,6} (.+)$", _FENCE.sub("", markdown), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_relative_link_points_at_a_file_and_heading_that_exist(document: str) -> None:
    page = REPO / document
    text = re.sub(r"`[^`\n]*`", "", _FENCE.sub("", page.read_text()))  # code shows, not links
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{document}: link to {target}: no such file"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked.read_text()), f"{document}: no heading for {target}"
