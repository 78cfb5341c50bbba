"""Config fuzzing: whatever YAML tree or raw bytes a file holds, `validate` answers 0 or 2 with
its messages, never a traceback (in-process through main(), and as a real subprocess)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.cli import main
from exporter.config import ExporterSettings, Item
from exporter.probes import PROBES

TESTDATA = Path(__file__).parent / "testdata"

FIELDS = sorted(
    {*Item.model_fields, *ExporterSettings.model_fields, *PROBES, "checklists", "sections"}
    | {"name", "title", "items", "id", "url", "host", "port", "path", "<<"}
)
VALID = """\
exporter:
  listen: "127.0.0.1:9840"
  default_interval: 30s
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: health
            title: Health
            interval: 30s
            http: {url: "http://127.0.0.1:8000/health"}
            expect: ["status == 200", "duration < 500ms"]
          - id: oncall
            title: On-call
            every: 30d
            manual: {}
"""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["30s", "1h30m", "99999999999999999999d", "[zz]:80", "mysql://x", "${X}"]),
    st.sampled_from(["status == 200", "body matches '(a+)+b'", "stauts == 200", "a{2000}"]),
    st.text(max_size=20),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=5),
    ),
    max_leaves=30,
)


def _item(tree: Any) -> Any:
    """A tree in an item's place, so the fuzzing reaches the item and probe models."""
    return {"checklists": [{"name": "app", "sections": [{"name": "s", "items": [tree]}]}]}


def _validate(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", "--config", str(path)])
    return code, out.getvalue() + err.getvalue()


def _check(path: Path) -> None:
    code, output = _validate(path)
    assert code in (0, 2), output
    assert "Traceback" not in output
    if code == 2:
        assert output.startswith(str(path)), output


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(tree=trees, where=st.sampled_from(["root", "item", "exporter"]))
def test_any_yaml_tree_is_valid_or_a_config_error(tmp_path: Path, tree: Any, where: str) -> None:
    document = {
        "root": tree,
        "item": _item(tree),
        "exporter": {"exporter": tree, **yaml.safe_load(VALID)},
    }[where]
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    _check(path)


@FUZZ
@given(data=st.binary(max_size=300))
def test_any_bytes_are_valid_or_a_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    _check(path)


@FUZZ
@given(at=st.integers(min_value=0, max_value=len(VALID)), data=st.binary(min_size=1, max_size=8))
def test_a_valid_file_with_bytes_spliced_in_is_valid_or_a_config_error(
    tmp_path: Path, at: int, data: bytes
) -> None:
    """Raw bytes far from any structure rarely reach the models; splicing into a good file does."""
    text = VALID.encode()
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(text[:at] + data + text[at:])
    _check(path)


@pytest.mark.parametrize(
    "content",
    [
        (TESTDATA / "invalid-alias-bomb.yml").read_bytes(),
        (TESTDATA / "invalid-nul-byte.yml").read_bytes(),
        b"\xff\xfe\x00garbage",
        b"checklists: !!python/object/apply:os.system ['true']\n",
        VALID.encode().replace(b"30s", b"[30s]"),
    ],
    ids=["alias-bomb", "nul-byte", "not-utf8", "python-tag", "duration-list"],
)
def test_the_real_command_exits_2_without_a_traceback(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"{path}:"), done.stderr
    assert "Traceback" not in done.stderr


# The on-call fields (issue 16): depends_on, ready_min_score, ping items and the required
# placeholder ${VAR:?EXAMPLE} of imported configs. Drawn from values near the valid ones, so
# most examples reach the dependency graph and the unconfigured rule, not only the models.
_GOOD_REFS = st.sampled_from(["a", "b", "c", "app/a", "app/b", "other/a", "other/x", "nope"])
refs = st.one_of(  # mostly well formed, so the graph (unknown, self, cycles) is reached
    _GOOD_REFS,
    _GOOD_REFS,
    _GOOD_REFS,
    st.sampled_from(["/", "", "A", "app/", "a/b/c", "${DEP:?a}", "${DEP:-b}", "other/${X:?x}"]),
    scalars,
)
placeholders = st.builds(
    "{}{}".format,
    st.sampled_from(["", "http://", "postgresql://u@", "redis://"]),
    st.sampled_from(
        [
            *("${URL:?http://h/x}", "${URL:?}", "${:?x}", "${URL:?${Y:?z}}", "${URL:?a b}"),
            *("${URL:?", "${URL?x}", "${URL:?http://u:pw@h/}", "$${URL:?x}", "${PORT:?80}"),
            "${URL:-${U:?x}}",
        ]
    ),
)
ping_fields = st.fixed_dictionaries(
    {"title": st.just("job"), "ping": st.just({}) | trees},
    optional={
        "every": st.sampled_from(["1d", "0s", "-1h", "x"]) | scalars,
        "grace": st.sampled_from(["2h", "0s"]) | scalars,
        "timeout": st.sampled_from(["5m", "0s", "1d"]) | scalars,
        "schedule": st.sampled_from(["0 2 * * *", "* * *"]),
        "interval": st.sampled_from(["5s"]),
        "expect": st.lists(st.sampled_from(["exit_code == 0", "output contains 'ok'", "x =="])),
        "depends_on": st.lists(refs, max_size=4) | refs,
    },
)
probes = st.one_of(
    st.fixed_dictionaries({"http": st.fixed_dictionaries({"url": placeholders})}),
    st.fixed_dictionaries({"postgres": st.fixed_dictionaries({"dsn": placeholders})}),
    st.fixed_dictionaries(
        {"tcp": st.fixed_dictionaries({"host": placeholders, "port": placeholders | scalars})}
    ),
    st.just({"manual": {}}),
)
probed_fields = st.builds(
    lambda probe, extra: {"title": "A", **probe, **extra},
    probes,
    st.fixed_dictionaries(
        {},
        optional={
            "depends_on": st.lists(refs, max_size=4) | refs,
            "severity": st.sampled_from(["critical", "warning", "info", "fatal"]),
        },
    ),
)
on_call_items = st.lists(ping_fields | probed_fields, min_size=1, max_size=3).map(
    lambda items: [{"id": "abc"[n], **item} for n, item in enumerate(items)]
)


@FUZZ
@given(
    items=on_call_items,
    other=on_call_items,
    score=scalars | st.sampled_from([0, 0.5, 1, 1.5, -0.1, "0.9", "90%", True]),
)
def test_on_call_fields_are_valid_or_a_config_error(
    tmp_path: Path, items: list[Any], other: list[Any], score: Any
) -> None:
    document = {
        "checklists": [
            {
                "name": "app",
                "ready_min_score": score,
                "sections": [{"name": "s", "items": items}],
            },
            {"name": "other", "sections": [{"name": "s", "items": [*other, VALID_PING]}]},
        ]
    }
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    _check(path)


VALID_PING = {"id": "x", "title": "X", "ping": {}, "every": "1d"}
