"""Names, titles and signatures people read: invisible and reordering characters are refused."""

from __future__ import annotations

import pytest

from exporter.attestations import AttestationRequest
from exporter.importing.importer import import_checklist, render_yaml
from exporter.loader import ConfigError, parse_config

CONFIG = """
checklists:
  - name: app
    title: "{checklist}"
    sections:
      - name: s
        title: "{section}"
        items:
          - id: drill
            title: "{item}"
            manual: {{}}
"""

HIDDEN = ["\u202e", "\u2066", "\u200b", "\u200d", "\u2060", "\ufeff", "\u00ad", "\x07", "\x85"]


@pytest.mark.parametrize("char", HIDDEN)
@pytest.mark.parametrize(("where", "line"), [("checklist", 4), ("section", 7), ("item", 10)])
def test_config_titles_refuse_hidden_characters_with_their_line(
    char: str, where: str, line: int
) -> None:
    titles = {"checklist": "App", "section": "Section", "item": "Drill"}
    titles[where] = f"Sign{char}ed"
    text = CONFIG.format(**{k: v.encode("unicode_escape").decode() for k, v in titles.items()})
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    message = str(caught.value)
    assert message.startswith(f"c.yaml:{line}:")
    assert f"U+{ord(char):04X} at character 5" in message
    assert char not in message


def test_ordinary_titles_stay_as_written() -> None:
    title = "Café — résumé ✅ 日本 tab\\tand line\\nbreak"
    loaded = parse_config(CONFIG.format(checklist="App", section="S", item=title), "c.yaml")
    assert loaded.config.checklists[0].sections[0].items[0].title.startswith("Café — résumé ✅")


@pytest.mark.parametrize("char", HIDDEN)
def test_attestation_by_and_note_refuse_hidden_characters(char: str) -> None:
    with pytest.raises(ValueError, match="invisible or control characters"):
        AttestationRequest(checklist="app", item="drill", by=f"ali{char}ce")
    with pytest.raises(ValueError, match="invisible or control characters"):
        AttestationRequest(checklist="app", item="drill", by="alice", note=f"do{char}ne")
    assert AttestationRequest(checklist="app", item="drill", by="alice", note="a\n\tb").note


def test_import_drops_hidden_characters_from_document_titles() -> None:
    markdown = "# Go\u200blive\n\n## Data\u00adbase\n\n- [ ] Back\u202eups\n- [ ] \u200b\n"
    imported = import_checklist(markdown, "go", "go.md")
    config = parse_config(render_yaml(imported), "go.yaml").config
    titles = [i.title for s in config.checklists[0].sections for i in s.items]
    assert titles[0] == "Backups"
    assert titles[1].startswith("(untitled item")
