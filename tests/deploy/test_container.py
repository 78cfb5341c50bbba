"""The container image: hadolint-clean, and its entrypoint, run here as the image runs it, serves.

No container engine runs here (only the docker client), so the test does what the Dockerfile
does: the build stage's COPYs and venv, the runtime stage's COPYs, ENV, WORKDIR and USER, into a
scratch root; then it runs ENTRYPOINT + CMD as the image's non-root user and asks /health/live,
with the image's own HEALTHCHECK command too."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.running import wait_until_answers
from tests.support import dockerfile
from tests.support.servers import free_port

REPO = Path(__file__).parents[2]
DOCKERFILE = REPO / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
HEALTHCHECK = REPO / "deploy/docker/healthcheck.py"
STOP_BUDGET = 60.0
"""Seconds a checklist gives a service to stop; the Dockerfile's comment promises it."""

STAGES = dockerfile.parse(DOCKERFILE)
BUILD, RUNTIME = STAGES[0], STAGES[-1]


def hadolint(path: Path) -> tuple[int, list[dict[str, str]]]:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "-f", "json", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=path.parent,
    )
    return result.returncode, json.loads(result.stdout or "[]")


def test_hadolint_has_nothing_to_say() -> None:
    assert not (REPO / ".hadolint.yaml").exists(), "no rule may be switched off"
    code, findings = hadolint(DOCKERFILE)
    assert findings == [], findings
    assert code == 0


def test_hadolint_would_catch_a_careless_image(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN pip install flask\nCMD python -m flask run\n")
    code, findings = hadolint(careless)
    assert code != 0
    assert {"DL3006", "DL3013", "DL3042"} <= {f["code"] for f in findings}


def test_image_is_multi_stage_slim_pinned_and_non_root() -> None:
    assert len(STAGES) >= 2 and BUILD.name, "a named build stage and a runtime stage"
    for stage in STAGES:
        image, _, tag = stage.base.partition(":")
        assert image == "python" and "-slim" in tag, stage.base
        assert tag.split("-")[0].count(".") == 2, f"pin the patch release: {stage.base}"
    uid = RUNTIME.last("USER").args.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "USER must be a numeric non-root uid (runAsNonRoot)"
    assert RUNTIME.last("STOPSIGNAL").args == "SIGTERM"
    runtime_runs = " ".join(i.args for i in RUNTIME.all("RUN"))
    for tool in ("apt-get install", "gcc", "build-essential"):
        assert tool not in runtime_runs, f"the runtime stage installs {tool}"
    assert "pip uninstall" in runtime_runs, "the runtime image keeps pip"
    assert all(origin == BUILD.name or origin is None for origin, _, _ in RUNTIME.copies())


def test_config_and_state_live_on_volumes() -> None:
    volumes = json.loads(RUNTIME.last("VOLUME").args)
    command = RUNTIME.last("CMD").exec_form()
    config = command[command.index("--config") + 1]
    state = RUNTIME.env()["READINESS_STATE"].removeprefix("sqlite:///")
    for path in (config, state):
        assert any(path.startswith(v.rstrip("/") + "/") for v in volumes), (path, volumes)


def dockerignore_includes(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    included = True
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        parts = Path(path).parts
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(c, pattern.replace("**/", ""))
            for c in candidates
        ):
            included = negate
    return included


def test_dockerignore_sends_what_the_image_copies_and_nothing_private() -> None:
    copied = [
        src
        for stage in STAGES
        for origin, srcs, _ in stage.copies()
        if origin is None
        for src in srcs
    ]
    for src in copied:
        assert (REPO / src).exists(), f"COPY {src}: no such file in the repo"
        assert dockerignore_includes(src.rstrip("/")), f".dockerignore leaves out {src}"
        if (REPO / src).is_dir():
            for inner in (REPO / src).rglob("*.py"):
                assert dockerignore_includes(str(inner.relative_to(REPO)))
    for private in (
        ".git/config",
        ".venv/bin/python",
        "readiness-state.db",
        ".env",
        "tests/x.py",
        "exporter/__pycache__/cli.cpython-311.pyc",
    ):
        assert not dockerignore_includes(private), private


# --- the entrypoint, run as the image runs it ---------------------------------------------------


def system_python() -> str:
    """An interpreter the image's non-root user may run (the test's own may sit under /root)."""
    for candidate in ("/usr/local/bin/python3", "/usr/bin/python3"):
        if os.access(candidate, os.X_OK) and os.stat(candidate).st_mode & 0o005 == 0o005:
            return candidate
    raise AssertionError("no world-executable python3 in /usr/local/bin or /usr/bin")


@pytest.fixture(scope="module")
def image_root() -> Iterator[Path]:
    """A scratch root holding what the image holds, built the way the Dockerfile builds it."""
    root = Path(tempfile.mkdtemp(prefix="issue8-image-"))
    root.chmod(0o755)  # mkdtemp makes it 0700: the image's user must reach inside
    try:
        src = inside(root, BUILD.last("WORKDIR").args)
        for _, sources, dest in BUILD.copies():
            for source in sources:
                docker_copy(REPO / source, src / dest if dest != "./" else src, dest.endswith("/"))
        venv = inside(root, next(d for o, _, d in RUNTIME.copies() if o == BUILD.name))
        run([system_python(), "-m", "venv", "--without-pip", str(venv)])
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(venv / "bin/python"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                str(src),
            ]
        )
        for origin, sources, dest in RUNTIME.copies():
            for source in sources if origin is None else ():
                docker_copy(REPO / source, inside(root, dest), dest.endswith("/"))
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(command: list[str]) -> None:
    subprocess.run(command, check=True, timeout=300)


def inside(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def docker_copy(source: Path, dest: Path, into_dir: bool) -> None:
    """COPY's rules: a directory's contents go into dest; a file goes into dest/ or becomes dest."""
    if source.is_dir():
        shutil.copytree(
            source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
        return
    target = dest / source.name if into_dir else dest
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)


def test_entrypoint_serves_health_as_the_image_user(image_root: Path) -> None:
    uid, gid = (int(x) for x in RUNTIME.last("USER").args.split(":"))
    env_image = RUNTIME.env()
    workdir = inside(image_root, RUNTIME.last("WORKDIR").args)
    workdir.mkdir(parents=True, exist_ok=True)
    state = inside(image_root, env_image["READINESS_STATE"].removeprefix("sqlite:///"))
    assert state.parent == workdir, "the state file lives in the WORKDIR volume"
    if os.geteuid() == 0:
        os.chown(workdir, uid, gid)
        as_user = [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--no-new-privs",
            "--",
        ]
    else:
        as_user = []  # already not root
    workdir.chmod(0o750)
    port = free_port()
    image_bin = env_image["PATH"].split(":")[0]
    env = {
        **{k: v for k, v in env_image.items() if k.startswith(("READINESS_", "PYTHON"))},
        "PATH": f"{inside(image_root, image_bin)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "READINESS_STATE": f"sqlite:///{state}",
        # The image listens on 0.0.0.0; here only on loopback, same port variable.
        "READINESS_LISTEN": f"127.0.0.1:{port}",
        "READINESS_SELF_URL": f"http://127.0.0.1:{port}",
    }

    def mapped(words: list[str]) -> list[str]:
        return [
            str(inside(image_root, w))
            if w.startswith("/") and inside(image_root, w).exists()
            else w
            for w in words
        ]

    command = mapped(RUNTIME.last("ENTRYPOINT").exec_form() + RUNTIME.last("CMD").exec_form())
    healthcheck = mapped(RUNTIME.last("HEALTHCHECK").exec_form())
    log = workdir.parent / "exporter.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*as_user, *command], env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until_answers(proc, log, f"http://127.0.0.1:{port}/health/live", "entrypoint")
        status = Path(f"/proc/{proc.pid}/status").read_text()
        real_uid = int(
            next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]
        )
        assert real_uid != 0 and (os.geteuid() != 0 or real_uid == uid)
        check = subprocess.run(
            [*as_user, *healthcheck], env=env, capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, check.stderr
        wait_until_answers(proc, log, f"http://127.0.0.1:{port}/health/ready", "entrypoint")
        assert state.exists() and state.stat().st_uid == real_uid
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=STOP_BUDGET)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, log.read_text()
    assert took < STOP_BUDGET
    down = subprocess.run(
        [*as_user, *healthcheck], env=env, capture_output=True, text=True, timeout=30
    )
    assert down.returncode == 1, "the healthcheck must fail when nothing answers"


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("0.0.0.0:9840", "http://127.0.0.1:9840/health/live"),
        (":9841", "http://127.0.0.1:9841/health/live"),
        ("[::]:9842", "http://127.0.0.1:9842/health/live"),
        ("[::1]:9843", "http://[::1]:9843/health/live"),
        ("10.0.0.5:9844", "http://10.0.0.5:9844/health/live"),
    ],
)
def test_healthcheck_asks_loopback_when_listening_everywhere(listen: str, url: str) -> None:
    spec = importlib.util.spec_from_file_location("healthcheck", HEALTHCHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.live_url(listen) == url
