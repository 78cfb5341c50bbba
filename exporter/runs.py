"""Running items now (POST /api/v1/runs, `check --url`): the request, the items it selects,
and why an item cannot run. Shared by the API and the daemon; no web imports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from exporter.attestations import Invalid, NotFound, checklist_named, json_request
from exporter.evaluate import not_runnable
from exporter.results import ItemKey

if TYPE_CHECKING:
    from exporter.config import Config


class RunRequest(BaseModel):
    """`{checklist}`, `{checklist, section}` or `{checklist, item}`."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    checklist: str = Field(min_length=1, max_length=100)
    section: str | None = Field(default=None, min_length=1, max_length=100)
    item: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_scope(self) -> RunRequest:
        if self.section is not None and self.item is not None:
            raise ValueError("give section or item, not both")
        return self


def parse_request(body: bytes) -> RunRequest:
    """The request in a JSON body, or Invalid naming the field at fault."""
    return json_request(body, RunRequest, ": {checklist} or {checklist, section|item}")


@dataclass(frozen=True)
class Selection:
    """The items a request names: those that run, and those left out with the reason."""

    checklist: str
    runnable: tuple[ItemKey, ...]
    skipped: tuple[tuple[ItemKey, str], ...]


def select(config: Config, request: RunRequest) -> Selection:
    """The items of the request; NotFound for an unknown checklist, section or item, Invalid
    when the one item named cannot run."""
    checklist = checklist_named(config, request.checklist)
    sections = checklist.sections
    if request.section is not None:
        sections = tuple(s for s in sections if s.name == request.section)
        if not sections:
            raise NotFound(f"checklist {checklist.name!r} has no section {request.section!r}")
    items = [i for s in sections for i in s.items]
    if request.item is not None:
        items = [i for i in items if i.id == request.item]
        if not items:
            raise NotFound(f"checklist {checklist.name!r} has no item {request.item!r}")
        why = not_runnable(items[0])
        if why is not None:
            raise Invalid("item", f"{checklist.name}/{request.item} cannot run now: {why}")
    runnable, skipped = [], []
    for item in items:
        key = ItemKey(checklist.name, item.id)
        why = not_runnable(item)
        if why is None:
            runnable.append(key)
        else:
            skipped.append((key, why))
    return Selection(checklist.name, tuple(runnable), tuple(skipped))
