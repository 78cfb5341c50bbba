"""`validate`'s summary line counts in words that agree with the numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.cli import main

ITEM = """          - id: {id}
            title: Item {id}
            {probe}
"""


def config(checklists: int, items: int, probe: str = "manual: {}") -> str:
    body = "".join(ITEM.format(id=f"i{n}", probe=probe) for n in range(items))
    return "checklists:\n" + "".join(
        f"  - name: c{n}\n    sections:\n      - name: s\n        items:\n{body}"
        for n in range(checklists)
    )


@pytest.mark.parametrize(
    ("checklists", "items", "said"),
    [
        (1, 1, "1 checklist, 1 item"),
        (1, 2, "1 checklist, 2 items"),
        (2, 1, "2 checklists, 2 items"),
    ],
)
def test_validate_counts_in_singular_and_plural(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], checklists: int, items: int, said: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(config(checklists, items))
    assert main(["validate", "--config", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: OK ({said})\n"


def test_one_unconfigured_item_is_said_in_the_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VO_DIR", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text(config(1, 1, 'file: {path: "${VO_DIR:?/srv}/x"}'))
    assert main(["validate", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  1 item is unconfigured (not run) until these are set: VO_DIR (1 item)\n" in out
