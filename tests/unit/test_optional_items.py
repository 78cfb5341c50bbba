"""Items marked "if applicable": import writes `optional: true`; an optional item nobody has set
up (not attested) reads n/a? and is left out of the score and readiness, while one that is set
up and fails counts like any other; `optional` is not part of the item's fingerprint."""

from __future__ import annotations

from exporter import render
from exporter.evaluate import evaluate
from exporter.importing.importer import import_checklist, render_yaml
from exporter.loader import parse_config
from exporter.reasons import Reason
from exporter.redact import Redactor
from exporter.results import Attestation, ItemKey, ItemState, Result

T0 = 1_800_000_000.0
DOC = """# Launch

## Platform

- [ ] Liveness probes configured (if using Kubernetes)
- [ ] Feature flags reviewed, if applicable
- [ ] Optional: status page subscribed
- [ ] Backups verified
"""


def test_import_marks_if_applicable_items_optional() -> None:
    loaded = parse_config(render_yaml(import_checklist(DOC, "launch", "launch.md")))
    items = {i.id: i for s in loaded.config.checklists[0].sections for i in s.items}
    assert {k: v.optional for k, v in items.items()} == {
        "liveness-probes-configured": True,
        "feature-flags-reviewed-if-applicable": True,
        "optional-status-page-subscribed": True,
        "backups-verified": False,
    }


CONFIG = """
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - {id: rota, title: Rota, manual: {}}
          - {id: k8s, title: K8s (if using Kubernetes), manual: {}, optional: true}
          - {id: hpa, title: HPA (if using Kubernetes), optional: true,
             tcp: {host: 127.0.0.1, port: 1}}
"""


def test_an_optional_item_not_set_up_is_left_out_until_it_is() -> None:
    config = parse_config(CONFIG).config
    rota = Attestation(
        "app", "rota", "ann", T0, config.checklists[0].sections[0].items[0].fingerprint
    )
    hpa_ok = Result(True, Reason.OK, T0, 0.01)
    states = {
        ItemKey("app", "rota"): ItemState(attestation=rota),
        ItemKey("app", "hpa"): ItemState(hpa_ok, T0, T0),
    }
    (view,) = evaluate(config, states, T0 + 1)
    assert (view.score, view.ready) == (1.0, True)
    table = render.table([view], redactor=Redactor())
    assert next(line for line in table.splitlines() if " k8s " in line).lstrip().startswith("N/A?")
    assert "app: 2/2 passing, 1 n/a (score 1.00), READY" in table
    assert "n/a?: optional (if applicable) and not set up" in render.markdown(
        [view], redactor=Redactor()
    )

    # Set up and failing: it counts like any other item.
    states[ItemKey("app", "hpa")] = ItemState(Result(False, Reason.CONNECT, T0, 0.01), T0, T0)
    (view,) = evaluate(config, states, T0 + 1)
    assert (view.score, view.ready) == (0.5, False)


def test_optional_is_not_part_of_the_fingerprint() -> None:
    marked = parse_config(CONFIG).config.checklists[0].sections[0].items[1]
    unmarked = parse_config(CONFIG.replace(", optional: true}", "}", 1)).config
    assert not unmarked.checklists[0].sections[0].items[1].optional
    assert marked.fingerprint == unmarked.checklists[0].sections[0].items[1].fingerprint
