"""The config schema of DESIGN.md as strict, frozen pydantic models (YAML is in loader.py)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import cache, cached_property
from typing import Annotated, Any, Literal, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from exporter import probes
from exporter.conditions import Condition
from exporter.probes import PROBES
from exporter.probes.base import ProbeSpec
from exporter.redact import url_credentials
from exporter.results import GO_LIVE_ITEM as GO_LIVE_ITEM
from exporter.results import MANUAL, PING
from exporter.results import Severity as Severity
from exporter.roles import Role as Role
from exporter.text import visible_lines
from exporter.units import parse_duration

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=100)]
Dependency = Annotated[
    str, Field(pattern=r"^([a-z0-9][a-z0-9_-]*/)?[a-z0-9][a-z0-9_-]*$", max_length=201)
]
"""`ITEM` of the same checklist or `CHECKLIST/ITEM` (exporter/dependencies.py)."""
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Title = Annotated[str, AfterValidator(visible_lines)]
"""What people read on pages and in labels: no bidi, zero-width or control characters."""


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be greater than zero")
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]


def _to_condition(value: Any) -> Condition:
    if isinstance(value, Condition):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a condition is a string such as 'status == 200', got {value!r}")
    return Condition.parse(value)


ConditionField = Annotated[Condition, PlainValidator(_to_condition)]

DUPLICATE = "duplicate"
"""The error type of a name used twice: its location is the repeat's, so the loader names the
line of the second use."""


def _repeats(
    names: Iterable[tuple[tuple[str | int, ...], str]], message: str, **ctx: str
) -> list[InitErrorDetails]:
    """Checklist names, section names and item ids become label values, so each is used once:
    one error per repeat, at the repeat's place (`{name}` in `message` is the name)."""
    seen: set[str] = set()
    errors: list[InitErrorDetails] = []
    for loc, name in names:
        if name in seen:
            error = PydanticCustomError(DUPLICATE, message, {"name": name, **ctx})
            errors.append(InitErrorDetails(type=error, loc=loc, input=name))
        seen.add(name)
    return errors


def _refuse(model: str, errors: list[InitErrorDetails]) -> None:
    if errors:
        raise ValidationError.from_exception_data(model, errors)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiToken(Strict):
    name: Name
    token_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    roles: tuple[Role, ...] = (Role.READ,)


ENV_PREFIX = "READINESS_"


class ExporterSettings(Strict):
    """The `exporter:` block; each field may be overridden by `READINESS_<FIELD>` in the env
    (`load`)."""

    listen: str = Field(default="127.0.0.1:9840", pattern=r"^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$")
    state: str = "sqlite:///./readiness-state.db"
    default_interval: PositiveDuration = timedelta(seconds=60)
    default_timeout: PositiveDuration = timedelta(seconds=10)
    max_concurrency: int = Field(default=64, ge=1, le=10_000)
    api_tokens: tuple[ApiToken, ...] = ()
    allowed_origins: tuple[Annotated[str, Field(pattern=r"^https?://[^/\s]+$")], ...] = ()
    """Origins (scheme://host[:port]) besides the daemon's own whose pages may post to it."""
    history_retention: PositiveDuration = timedelta(days=400)
    """How long item history is kept; older records are pruned in the background."""
    max_waiver: PositiveDuration = timedelta(days=90)
    """How far ahead a waiver may expire."""
    waivers_need_approval: bool = True
    """A waiver takes effect once an admin token other than the requester's approves it."""
    waiver_warning: PositiveDuration = timedelta(days=7)
    """How long before a waiver expires the shipped alert warns (a gauge the rule reads)."""
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @classmethod
    def load(cls, written: Mapping[str, Any], environ: Mapping[str, str]) -> ExporterSettings:
        """The block as written, each field overridden by its `READINESS_<FIELD>` variable
        (any case): the environment wins over the file, as operators expect of an override.
        A list's variable holds JSON, e.g. `["https://ops.example.com"]`."""
        named = {k.upper(): v for k, v in environ.items() if k.upper().startswith(ENV_PREFIX)}
        overrides: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            variable = f"{ENV_PREFIX}{name.upper()}"
            if variable not in named:
                continue
            value: Any = named[variable]
            if get_origin(field.annotation) is tuple:
                try:
                    value = json.loads(value)
                except ValueError:
                    raise ValueError(
                        f"{variable} must be a JSON list, e.g. {variable}='[\"...\"]'"
                    ) from None
            overrides[name] = value
        return cls.model_validate({**written, **overrides})

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, port = value.rsplit(":", 1)
        if int(port) > 65535:
            raise ValueError(f"port {port} in {value!r} is above 65535")
        if host.startswith("["):
            try:
                ipaddress.IPv6Address(host[1:-1])
            except ValueError:
                raise ValueError(
                    f"{host} in {value!r} is not an IPv6 address (e.g. [::1]:9840)"
                ) from None
        elif host and not _HOSTNAME.fullmatch(host):
            raise ValueError(
                f"{host!r} in {value!r} is not a host name or IPv4 address (e.g. 127.0.0.1:9840)"
            )
        return value

    @field_validator("state")
    @classmethod
    def _state_url(cls, value: str) -> str:
        if value.startswith("sqlite:///") or value == "sqlite://":
            return value
        if value.startswith(("postgresql://", "postgres://")):
            return value
        # Only the scheme is shown: the rest of a database URL may hold a password.
        scheme = value.split("://", 1)[0] + "://" if "://" in value else "no scheme"
        raise ValueError(
            f"unsupported state URL ({scheme}): use sqlite:///path/to/state.db"
            " or postgresql://user@host:5432/db"
        )

    def secrets(self, environ: Mapping[str, str]) -> set[str]:
        """The API tokens' values and the credentials of the store's URL."""
        found = {environ[t.token_env] for t in self.api_tokens if environ.get(t.token_env)}
        return found | url_credentials(self.state)  # postgresql://user:password@ of the store

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]") or "0.0.0.0"  # noqa: S104

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


@cache
def default_conditions(kind: str) -> tuple[Condition, ...]:
    """A kind's default `expect:`, parsed once per process rather than once per run."""
    return tuple(Condition.parse(text) for text in PROBES[kind].DEFAULT_EXPECT)


class Item(Strict):
    """A checklist item: exactly one probe key (`http:`, `tcp:`, ... or `manual:`)."""

    id: Name
    title: Title = Field(min_length=1)
    description: Title | None = None
    severity: Severity = Severity.WARNING
    interval: PositiveDuration | None = None
    schedule: str | None = None
    timeout: PositiveDuration | None = None
    every: PositiveDuration | None = None
    grace: Duration = timedelta(0)
    expect: tuple[ConditionField, ...] | None = None
    runbook_url: str | None = None
    parent: Name | None = None
    optional: bool = False
    """From "if applicable" items: while not set up (not attested, unconfigured) it reads n/a?
    and is left out of the score and readiness. Not part of the fingerprint."""
    """The item this one is nested under in the checklist document (reports indent it)."""
    depends_on: tuple[Dependency, ...] = ()
    """Items this one needs: while one is not passing, this item failing is *blocked* (shown
    as such, and not paged on its own)."""
    # One optional field per kind of the registry, in its order (a test holds them equal).
    http: probes.http.Spec | None = None
    tls: probes.tls.Spec | None = None
    tcp: probes.tcp.Spec | None = None
    dns: probes.dns.Spec | None = None
    postgres: probes.postgres.Spec | None = None
    redis: probes.redis.Spec | None = None
    prometheus: probes.prometheus.Spec | None = None
    file: probes.file.Spec | None = None
    disk: probes.disk.Spec | None = None
    process: probes.process.Spec | None = None
    command: probes.command.Spec | None = None
    host: probes.host.Spec | None = None
    manual: probes.manual.Spec | None = None
    ping: probes.ping.Spec | None = None
    _unset: tuple[str, ...] = PrivateAttr(default=())

    def needs_variables(self, names: tuple[str, ...]) -> None:
        """The loader's word that required placeholders (`${VAR:?EXAMPLE}`) are unset."""
        self._unset = names

    @property
    def unconfigured(self) -> tuple[str, ...]:
        """The variables to set before the item may run (an imported probe's placeholders);
        empty when it is configured. An unconfigured item is never probed."""
        return self._unset

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == GO_LIVE_ITEM:
            raise ValueError(
                f"item id '{GO_LIVE_ITEM}' is reserved (attesting it declares the checklist live):"
                " rename the item, or use the checklist's go_live:"
            )
        return value

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            # Here, not at the top: few configs have a cron item, and APScheduler is slow to load.
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(
                    f"invalid cron schedule {value!r} ({exc}): use five fields, e.g. '0 2 * * *'"
                ) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_probe(cls, data: Any) -> Any:
        if isinstance(data, dict):
            empty = [k for k in PROBES if k in data and data[k] is None]
            if empty:
                kind = empty[0]
                example = "{}" if kind == MANUAL else "{...} with its settings"
                raise ValueError(f"{kind}: is empty: write {kind}: {example}")
            kinds = [k for k in PROBES if k in data]
            if not kinds:
                raise ValueError(
                    "no probe: give exactly one of " + ", ".join(PROBES) + " (use manual: {} for "
                    "work a person attests)"
                )
            if len(kinds) > 1:
                raise ValueError(f"several probes ({', '.join(kinds)}): keep exactly one")
        return data

    @model_validator(mode="after")
    def _timing(self) -> Item:
        if self.interval is not None and self.schedule is not None:
            raise ValueError("give either interval or schedule, not both")
        if self.grace and self.every is None:
            raise ValueError("grace only applies to recurring items: add every")
        if self.kind == MANUAL and (self.interval or self.schedule or self.timeout):
            raise ValueError(
                "a manual item is attested, not probed: remove interval/schedule/timeout"
            )
        if self.kind == PING and (self.interval or self.schedule):
            raise ValueError(
                "a ping item is reported by its job, not probed: remove interval/schedule"
                " (every: says how often the job must succeed, timeout: how long a run may take)"
            )
        return self

    @cached_property
    def kind(self) -> str:
        """Computed once (the model is frozen): every run asks for it several times."""
        return next(k for k in PROBES if getattr(self, k) is not None)

    @property
    def spec(self) -> ProbeSpec:
        spec: ProbeSpec = getattr(self, self.kind)
        return spec

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """The item's `expect:`, or its kind's default when it has none."""
        if self.expect is not None:
            return self.expect
        return default_conditions(self.kind)

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the definition, not the title: attestations hold while it stays the same.
        Computed once: the model is frozen, and /status and every reload ask for it per item."""
        excluded = {
            "title",
            "description",
            "runbook_url",
            "expect",
            "parent",
            "depends_on",
            "optional",
        }
        definition = self.model_dump(mode="json", exclude=excluded)
        definition["expect"] = [c.text for c in self.conditions]
        blob = json.dumps(definition, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @cached_property
    def attested_fingerprint(self) -> str:
        """A hash of what a person attests to: the manual item's title, description and
        `every`. Its severity, runbook link or section may change; the attestation holds."""
        attested = {
            "title": self.title,
            "description": self.description,
            "every": self.every.total_seconds() if self.every else None,
        }
        blob = json.dumps(attested, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def attestation_matches(self, fingerprint: str) -> bool:
        """An attestation is of this definition: by what was attested, or (recorded before
        attestations had their own fingerprint) by the whole definition, as then."""
        return fingerprint in (self.attested_fingerprint, self.fingerprint)


class Section(Strict):
    name: Name
    title: Title | None = None
    items: tuple[Item, ...] = ()

    @model_validator(mode="after")
    def _parents_come_first(self) -> Section:
        seen: set[str] = set()
        for item in self.items:
            if item.parent is not None and item.parent not in seen:
                raise ValueError(
                    f"item {item.id}: parent '{item.parent}' is not an item above it in the section"
                )
            seen.add(item.id)
        return self

    @property
    def display_title(self) -> str:
        return self.title or self.name


class Checklist(Strict):
    name: Name
    title: Title | None = None
    go_live: datetime | None = None
    ready_min_score: float | None = Field(default=None, ge=0, le=1)
    """A score floor the checklist must also reach to be ready (docs/config.md: "When is a checklist
    ready")."""
    sections: tuple[Section, ...]

    @field_validator("go_live")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("go_live needs a time zone, e.g. 2026-12-01T00:00:00Z")
        return value

    @field_validator("ready_min_score", mode="before")
    @classmethod
    def _a_number(cls, value: object) -> object:
        if isinstance(value, bool):  # pydantic would read true as 1.0
            raise ValueError("a score from 0 to 1 (e.g. 0.9), not true or false")
        return value

    @field_validator("sections")
    @classmethod
    def _has_sections(cls, value: tuple[Section, ...]) -> tuple[Section, ...]:
        if not value:
            raise ValueError("a checklist needs at least one section")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Checklist:
        sections = self.sections
        section_names = _repeats(
            ((("sections", si, "name"), s.name) for si, s in enumerate(sections)),
            "section name '{name}' is used twice in '{checklist}'",
            checklist=self.name,
        )
        item_ids = _repeats(
            (
                (("sections", si, "items", ii, "id"), item.id)
                for si, section in enumerate(sections)
                for ii, item in enumerate(section.items)
            ),
            "id is used twice in checklist '{checklist}': ids must be unique within a checklist",
            checklist=self.name,
        )
        _refuse("Checklist", section_names + item_ids)
        return self

    @property
    def display_title(self) -> str:
        return self.title or self.name


class Config(Strict):
    exporter: ExporterSettings = Field(default_factory=ExporterSettings)
    checklists: tuple[Checklist, ...]

    @field_validator("checklists")
    @classmethod
    def _has_checklists(cls, value: tuple[Checklist, ...]) -> tuple[Checklist, ...]:
        if not value:
            raise ValueError("the config needs at least one checklist")
        names = (((ci, "name"), c.name) for ci, c in enumerate(value))
        _refuse("Config", _repeats(names, "checklist name '{name}' is used twice"))
        return value

    def secrets(self, environ: Mapping[str, str]) -> set[str]:
        """Every value the config's settings and probe specs hold (or name in `environ`) that
        no output may show; each spec knows its own secret fields."""
        found = self.exporter.secrets(environ)
        for checklist in self.checklists:
            for section in checklist.sections:
                for item in section.items:
                    found |= item.spec.secrets(environ)
        return found
