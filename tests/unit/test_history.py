"""Item history maths: the chain seals every record (an edit, insertion or removal names the
record), the share of time passing and the regressions come from the state changes alone."""

from __future__ import annotations

from dataclasses import replace

from exporter.history import (
    FAILING,
    LAPSED,
    PASSING,
    WAIVED,
    Change,
    broken_links,
    lost_tail,
    passing_share,
    regressions,
    seal,
)


def chain(*changes: Change) -> list[Change]:
    out: list[Change] = []
    for i, change in enumerate(changes, start=1):
        out.append(seal(change, i, out[-1].hash if out else ""))
    return out


def change(at: float, state: str, reason: str = "") -> Change:
    return Change("app", "api", at, state, reason)


def test_an_intact_chain_has_no_broken_link() -> None:
    records = chain(change(0, PASSING), change(10, FAILING, "connect"), change(20, PASSING))
    assert broken_links(records) == []
    # Retention pruned the oldest: the rest still holds.
    assert broken_links(records[1:]) == []


def test_an_edited_record_is_named() -> None:
    records = chain(change(0, PASSING), change(10, FAILING, "connect"), change(20, PASSING))
    records[1] = replace(records[1], reason="ok")
    assert broken_links(records) == ["history record 2: its hash does not match its content"]


def test_a_removed_record_is_named_by_the_one_after_it() -> None:
    records = chain(change(0, PASSING), change(10, FAILING, "connect"), change(20, PASSING))
    problems = broken_links([records[0], records[2]])
    assert problems == [
        "history record 3: does not follow record 1 (a record between them was removed or altered)"
    ]


def test_a_rehashed_forgery_breaks_the_next_link() -> None:
    records = chain(change(0, PASSING), change(10, FAILING, "connect"), change(20, PASSING))
    records[1] = seal(replace(records[1], reason="ok"), 2, records[0].hash)
    assert broken_links(records) == [
        "history record 3: does not follow record 2 (a record between them was removed or altered)"
    ]


def test_the_head_names_the_newest_records_cut_off_or_forged() -> None:
    records = chain(change(1, PASSING), change(2, FAILING, "x"), change(3, PASSING))
    head = (3, records[-1].hash)
    assert lost_tail(records, head) == []
    assert lost_tail([], (0, "")) == []  # a new store
    # Retention left only the newest; a record appended after the head was read is newer.
    assert lost_tail(records[2:], head) == []
    assert lost_tail(records, (2, records[1].hash)) == []
    # Cut off: the chain left links up fine, only the head tells.
    assert broken_links(records[:1]) == []
    assert lost_tail(records[:1], head) == [
        "history records 2..3 are gone: the chain's head names 3 as the newest"
        " (the newest left is 1)"
    ]
    assert lost_tail(records[:2], head) == [
        "history record 3 is gone: the chain's head names it as the newest (the newest left is 2)"
    ]
    assert lost_tail([], head) == [
        "history records up to 3 are gone: the chain's head names 3 as the newest and none is left"
    ]
    # The newest replaced by a forgery sealed to fit after record 2.
    forged = seal(change(3, PASSING, "forged"), 3, records[1].hash)
    assert broken_links([*records[:2], forged]) == []
    assert lost_tail([*records[:2], forged], head) == [
        "history record 3: its hash is not the one the chain's head holds"
    ]


def test_passing_share_counts_known_time_only() -> None:
    changes = [change(100, PASSING), change(160, FAILING, "timeout"), change(190, PASSING)]
    # [0, 100) unknown; 100..160 passing, 160..190 failing, 190..200 passing.
    assert passing_share(changes, 0, 200) == 70 / 100
    # The state before the period counts from its start.
    assert passing_share(changes, 170, 200) == 10 / 30
    assert passing_share([], 0, 200) is None


def test_waived_time_is_left_out_of_the_share() -> None:
    changes = [change(0, FAILING, "condition"), change(50, WAIVED), change(90, PASSING)]
    assert passing_share(changes, 0, 100) == 10 / 60


def test_regressions_start_after_go_live_and_merge_while_not_passing() -> None:
    changes = [
        change(0, FAILING, "connect"),
        change(10, PASSING),
        change(20, FAILING, "timeout"),
        change(30, LAPSED, "timeout"),
        change(40, PASSING),
        change(50, FAILING, "condition"),
    ]
    found = regressions(changes, go_live=5, start=0, end=100)
    # Failing when the checklist went live counts from go-live on.
    assert [(r.start, r.end, r.reason) for r in found] == [
        (5, 10, "connect"),
        (20, 40, "timeout"),
        (50, None, "condition"),
    ]
    assert regressions(changes, go_live=None, start=0, end=100) == []
