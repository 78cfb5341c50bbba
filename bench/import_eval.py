"""Scores import's probe suggestions against labelled checklists (bench/README.md, "Import").

    python bench/import_eval.py --labels bench/labels ../shared/checklists ../shared/corpus

Every `*.md` with a `*.labels.tsv` beside it (or of the same name in --labels) is imported
through `readiness-exporter import` and its output checked by `readiness-exporter validate`;
the items are then scored as ../shared/corpus/LABELING.md defines: recall = gold `probe` items
that got a probe / gold `probe` items, precision = probed items labelled `probe` or `maybe` /
probed items. Leave-one-document-out: each document scored again by the vocabulary without
the names its own wording motivated (the `@document` tags of exporter/importing/checks.py).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from exporter.importing import recognise
from exporter.importing.importer import Imported, default_name, import_checklist
from exporter.importing.mdchecklist import decode

_CHECKBOX = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[[ xX]\]")


@dataclass(frozen=True)
class Score:
    gold: int = 0
    found: int = 0
    probed: int = 0
    right: int = 0

    def __add__(self, other: Score) -> Score:
        return Score(
            self.gold + other.gold,
            self.found + other.found,
            self.probed + other.probed,
            self.right + other.right,
        )

    def row(self) -> str:
        recall = f"{self.found / self.gold:.2f}" if self.gold else "  - "
        precision = f"{self.right / self.probed:.2f}" if self.probed else "  - "
        found, right = f"({self.found:>2}/{self.gold:<2})", f"({self.right:>3}/{self.probed:<3})"
        return f"{recall} {found}  {precision} {right}"


def labels_of(path: Path) -> dict[int, tuple[str, str]]:
    """line -> (label, kind), from either layout (with or without the title column)."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return {int(r["line"]): (r["label"], r["kind"] or "") for r in rows}


def score(labels: dict[int, tuple[str, str]], probed: dict[int, str | None]) -> Score:
    gold = {line for line, (label, _) in labels.items() if label == "probe"}
    suggested = {line for line, kind in probed.items() if kind is not None}
    right = {line for line in suggested if labels.get(line, ("manual", ""))[0] != "manual"}
    return Score(len(gold), len(gold & suggested), len(suggested), len(right))


def suggestions(imported: Imported) -> dict[int, str | None]:
    """line -> the check import suggested (None: manual)."""
    return {i.line: i.suggestion.check if i.suggestion else None for i in imported.items}


def held_out(imported: Imported, vocabulary: recognise.Vocabulary) -> dict[int, str | None]:
    """line -> the check suggested with the vocabulary given (None: manual)."""
    out: dict[int, str | None] = {}
    for item in imported.items:
        text = recognise.Text.of(item.title, item.every[0] if item.every else None)
        found = recognise.suggest(text, vocabulary)
        out[item.line] = found.check if found else None
    return out


def cli_checks(document: Path, imported: Imported, tmp: Path) -> list[str]:
    """What goes wrong with the document through the CLI: import, then validate, as a user
    runs them (placeholders unset, so their defaults apply)."""
    env = {k: v for k, v in os.environ.items() if k not in recognise.PLACEHOLDERS}
    out = tmp / f"{imported.name}.yaml"
    command = [sys.executable, "-m", "exporter"]
    problems = []
    made = subprocess.run(
        [*command, "import", str(document), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        return [f"import exit {made.returncode}: {made.stderr.strip()}"]
    checked = subprocess.run(
        [*command, "validate", "--config", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if checked.returncode != 0:
        problems.append(f"validate exit {checked.returncode}: {checked.stderr.strip()}")
    config = yaml.safe_load(out.read_text(encoding="utf-8"))
    ids = [i["id"] for c in config["checklists"] for s in c["sections"] for i in s["items"]]
    if len(ids) != len(set(ids)):
        problems.append("item ids are not unique")
    if len(ids) != len(imported.items):
        problems.append(f"the CLI wrote {len(ids)} items, import made {len(imported.items)}")
    boxes = _checkbox_lines(document.read_text(encoding="utf-8", errors="replace"))
    lines = {i.line for i in imported.items}
    if lost := sorted(boxes - lines):
        problems.append(f"checkbox lines not imported: {lost}")
    return problems


def _checkbox_lines(text: str) -> set[int]:
    lines, fenced = set(), False
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(r"\s*(```|~~~)", line):
            fenced = not fenced
        elif not fenced and _CHECKBOX.match(line):
            lines.add(number)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="folders of *.md checklists")
    parser.add_argument("--labels", type=Path, action="append", default=[], help="more labels")
    parser.add_argument("--misses", action="store_true", help="list misses and wrong probes")
    args = parser.parse_args(argv)
    if missing := [str(d) for d in (*args.dirs, *args.labels) if not d.is_dir()]:
        print(f"no such folder: {', '.join(missing)}", file=sys.stderr)
        return 2

    print(f"{'document':<44} {'recall':<14} {'precision':<16} {'leave-one-out recall':<20} cli")
    pooled, pooled_out, failures = Score(), Score(), 0
    with tempfile.TemporaryDirectory() as tmp:
        for folder in args.dirs:
            mine, theirs, failed = _folder(folder, args.labels, Path(tmp), args.misses)
            print(_total(f"  all of {folder}", mine, theirs))
            pooled, pooled_out, failures = pooled + mine, pooled_out + theirs, failures + failed
    print(_total("pooled", pooled, pooled_out))
    return 1 if failures else 0


def _folder(folder: Path, more: list[Path], tmp: Path, misses: bool) -> tuple[Score, Score, int]:
    """Scores every labelled document of the folder: (as imported, held out, failures)."""
    mine, theirs, failures = Score(), Score(), 0
    for md in sorted(folder.glob("*.md")):
        beside = md.with_name(f"{md.stem}.labels.tsv")
        labels_path = next(
            (p for p in (beside, *(d / beside.name for d in more)) if p.exists()), None
        )
        if labels_path is None:
            print(f"{md.stem:<44} (no labels: not scored, not imported)")
            continue
        imported = import_checklist(decode(md.read_bytes()), default_name(md.stem), md.name)
        problems = cli_checks(md, imported, tmp)
        labels = labels_of(labels_path)
        if missing := sorted(set(labels) - {i.line for i in imported.items}):
            problems.append(f"labelled lines not imported: {missing}")
        failures += bool(problems)
        probed = suggestions(imported)
        unseen = held_out(imported, recognise.VOCABULARY.without(md.stem))
        scored, held = score(labels, probed), score(labels, unseen)
        mine, theirs = mine + scored, theirs + held
        loo = f"{held.found / held.gold:.2f}" if held.gold else "-"
        cli = "ok" if not problems else "FAIL: " + "; ".join(problems)
        print(f"{md.stem:<44} {scored.row():<31} {loo:<20} {cli}")
        if misses:
            _misses(imported, labels, probed)
    return mine, theirs, failures


def _total(name: str, mine: Score, theirs: Score) -> str:
    loo = f"{theirs.found / theirs.gold:.2f} ({theirs.found}/{theirs.gold})" if theirs.gold else "-"
    return f"{name:<44} {mine.row():<31} {loo}"


def _misses(
    imported: Imported, labels: dict[int, tuple[str, str]], probed: dict[int, str | None]
) -> None:
    for item in imported.items:
        label = labels.get(item.line, ("?", ""))[0]
        check = probed.get(item.line)
        if label == "probe" and check is None:
            print(f"    miss  {item.line:>4}  {item.title[:100]}")
        elif label == "manual" and check is not None:
            print(f"    wrong {item.line:>4}  [{check}] {item.title[:100]}")


if __name__ == "__main__":
    raise SystemExit(main())
