"""Suggests a probe for a checklist item from its words (`/health returns 200` → http).

Each recogniser reads the item's text and, when the text makes the check clear, returns a
Suggestion: a probe spec whose targets are `${VAR:-default}` placeholders (so the config
validates and runs as it is) and a comment saying what to fill in. Work only people can do
(tests, reviews, documents, sign-offs) and anything unclear stay manual.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.probes import PROBES

PLACEHOLDERS: dict[str, tuple[str, str]] = {
    "BASE_URL": ("http://127.0.0.1:8000", "the service's HTTP base URL (/health, /metrics, ...)"),
    "TLS_HOST": ("127.0.0.1", "host of the HTTPS endpoint whose certificate must be valid"),
    "TLS_PORT": ("443", "port of that HTTPS endpoint"),
    "DATABASE_URL": (
        "postgresql://postgres@127.0.0.1:5432/postgres",
        "PostgreSQL DSN; a password goes in the environment, never in this file",
    ),
    "PG_HOST": ("127.0.0.1", "PostgreSQL host"),
    "PG_PORT": ("5432", "PostgreSQL port"),
    "REDIS_URL": ("redis://127.0.0.1:6379/0", "Redis URL (rediss:// for TLS)"),
    "REDIS_HOST": ("127.0.0.1", "Redis host"),
    "REDIS_PORT": ("6379", "Redis port"),
    "PROMETHEUS_URL": ("http://127.0.0.1:9090", "Prometheus"),
    "PROMETHEUS_JOB": ("app", "the Prometheus job that scrapes the service"),
    "ALERTMANAGER_URL": ("http://127.0.0.1:9093", "Alertmanager"),
    "GRAFANA_URL": ("http://127.0.0.1:3000", "Grafana"),
    "SERVICE_NAME": ("app", "the service's systemd unit and /etc/logrotate.d/ file"),
    "PROCESS_NAME": ("app", "the service's process name (comm or basename of argv[0])"),
    "APP_DIR": ("/opt/app", "the service's install directory (relative paths are under it)"),
    "LOG_DIR": ("/var/log/app", "directory of the service's *.log files"),
    "DATA_DIR": ("/var/lib/app", "the service's data directory"),
    "BACKUP_DIR": ("/var/backups/app", "where the backup job writes its files"),
}

# A probe that looks at slow-changing things need not run every minute.
INTERVALS = {"tls": "1h", "file": "5m", "disk": "5m", "command": "5m", "host": "5m"}


def env(name: str) -> str:
    return f"${{{name}:-{PLACEHOLDERS[name][0]}}}"


@dataclass(frozen=True)
class Suggestion:
    kind: str
    spec: dict[str, Any]
    expect: tuple[str, ...] = ()
    note: str = ""
    """One or two lines for the YAML comment: what the probe checks and what to fill in."""
    env: tuple[str, ...] = field(default=())
    """The PLACEHOLDERS the spec uses."""

    @property
    def interval(self) -> str | None:
        return INTERVALS.get(self.kind)


@dataclass(frozen=True)
class Text:
    """An item's words: `plain` without Markdown marks, `low` lower-cased, `code` its `spans`."""

    plain: str
    low: str
    code: tuple[str, ...]
    cadence: str | None

    @classmethod
    def of(cls, title: str, cadence: str | None = None) -> Text:
        code = tuple(re.findall(r"`([^`]+)`", title))
        plain = re.sub(r"(\*\*|__|`|\*)", "", title)
        return cls(plain, plain.lower(), code, cadence)

    def has(self, pattern: str) -> re.Match[str] | None:
        return re.search(pattern, self.low)


# Work people do; an item in these words is attested, whatever else it mentions.
_PEOPLE_WORK = (
    r"\b(tests?|tested|testing|document(ed|ation|s)?|docs|review(ed|s)?|plan(ned|s)?|"
    r"procedures?|defined|approved|trained|training|notified|agreed|identified|"
    r"prepared|assessment|audit(s|ed)?|stakeholders?|sign-?off)\b"
)
_FS_ROOTS = (
    "/etc",
    "/var",
    "/opt",
    "/usr",
    "/home",
    "/srv",
    "/tmp",  # noqa: S108 - a prefix that marks a file path, not a file written here
    "/root",
    "/proc",
    "/sys",
    "/dev",
    "/mnt",
    "/run",
    "/lib",
    "/bin",
)
_SIZE = r"(\d+(?:\.\d+)?)\s*(gb|gib|tb|tib|mb|mib)\b"
_UNITS = {"gb": "GB", "gib": "GiB", "tb": "TB", "tib": "TiB", "mb": "MB", "mib": "MiB"}


def _size(match: re.Match[str], at: int = 1) -> str:
    return f"{match.group(at)}{_UNITS[match.group(at + 1)]}"


def _available(kind: str) -> bool:
    return kind in PROBES


def suggest(text: Text) -> Suggestion | None:
    """The probe the text makes clear, or None for a manual item."""
    for recogniser in _STRONG:
        if found := recogniser(text):
            return found
    if text.has(_PEOPLE_WORK):
        return None
    for recogniser in _RECOGNISERS:
        if found := recogniser(text):
            return found
    return None


# --- endpoints ------------------------------------------------------------------------------
def _endpoint(text: Text) -> Suggestion | None:
    paths = [
        p
        for p in (*text.code, *re.findall(r"(?<![\w.:/])(/[a-z0-9_.\-/]+)", text.plain))
        if re.fullmatch(r"/[A-Za-z0-9_.\-/]*", p) and not p.startswith(_FS_ROOTS)
    ]
    if not paths or not text.has(r"\b(endpoints?|returns?|accessible|responds?|route)\b"):
        return None
    return _http_endpoint(text, paths[0])


def _health(text: Text) -> Suggestion | None:
    if not text.has(r"\bhealth (endpoints?|checks? (are )?(passing|successful|working))"):
        return None
    return _http_endpoint(text, "/health")


def _http_endpoint(text: Text, path: str) -> Suggestion:
    status = text.has(r"\breturns? (\d{3})\b")
    expect: tuple[str, ...] = (f"status == {status.group(1)}",) if status else ("status == 200",)
    note = f"the service's {path} endpoint: set BASE_URL to the service's address"
    if text.has(r"prometheus|metrics format"):
        expect = ("status == 200", "content_type contains 'text/plain'", "body contains '# TYPE'")
        note += "; the body must be Prometheus text format"
    return Suggestion("http", {"url": env("BASE_URL") + path}, expect, note, ("BASE_URL",))


# --- TLS --------------------------------------------------------------------------------------
def _database_tls(text: Text) -> Suggestion | None:
    if not (text.has(r"\b(ssl|tls)\b") and text.has(r"\b(database|postgres(ql)?|db)\b")):
        return None
    if not _available("postgres"):
        return None
    return Suggestion(
        "postgres",
        {"dsn": env("DATABASE_URL")},
        ("ssl == true",),
        "this connection to PostgreSQL must use TLS: set DATABASE_URL (add ?sslmode=require)",
        ("DATABASE_URL",),
    )


def _tls(text: Text) -> Suggestion | None:
    if not text.has(r"\b(ssl|tls|https|certificates?)\b") or text.has(r"\bat rest\b"):
        return None
    if text.has(r"\b(database|postgres(ql)?|db|redis)\b"):
        return None
    spec: dict[str, Any] = {"host": env("TLS_HOST"), "port": env("TLS_PORT")}
    if version := text.has(r"\btls\s*v?1\.([23])\b"):
        spec["min_version"] = f"TLS1.{version.group(1)}"
    return Suggestion(
        "tls",
        spec,
        ("days_left > 14", "chain_valid == true", "hostname_valid == true"),
        "the certificate served at TLS_HOST:TLS_PORT: valid, trusted, for that name, 14+ days",
        ("TLS_HOST", "TLS_PORT"),
    )


# --- data services ------------------------------------------------------------------------------
# kind, its words, its name, the spec key of its address, placeholders (address, host, port)
_SERVICES = (
    ("postgres", r"postgres(?:ql)?", "PostgreSQL", "dsn", ("DATABASE_URL", "PG_HOST", "PG_PORT")),
    ("redis", r"redis", "Redis", "url", ("REDIS_URL", "REDIS_HOST", "REDIS_PORT")),
)


def _data_service(text: Text) -> Suggestion | None:
    """`PostgreSQL 15+ installed`, `Redis running`: its version, or that it answers."""
    for kind, words, name, key, (address, host, port) in _SERVICES:
        version = text.has(rf"\b{words}\s*(\d+(?:\.\d+)?)\s*\+")
        if not (version or text.has(rf"\b{words}\b.*\b(running|accessible|reachable)\b")):
            continue
        if _available(kind):
            expect = f"version >= {version.group(1)}" if version else "connected == true"
            note = f"the service's {name}: set {address}"
            return Suggestion(kind, {key: env(address)}, (expect,), note, (address,))
        note = f"{name} answers on its port: set {host} and {port}"
        if version:
            note += f"; the version ({version.group(1)}+) needs the {kind} probe"
        return Suggestion("tcp", {"host": env(host), "port": env(port)}, (), note, (host, port))
    return None


def _schema(text: Text) -> Suggestion | None:
    tables = text.has(r"\btables\b.*\bcreated\b")
    indexes = text.has(r"\b(indexes|indices)\b.*\b(created|completed)\b|\bindexes on\b")
    if not (tables or indexes) or not _available("postgres"):
        return None
    spec: dict[str, Any] = {"dsn": env("DATABASE_URL")}
    expect: list[str] = []
    if tables:
        spec["tables"] = ["CHANGE_ME_table"]
        expect.append("missing_tables == 0")
    if indexes:
        spec["indexes"] = ["CHANGE_ME_index"]
        expect.append("missing_indexes == 0")
    return Suggestion(
        "postgres",
        spec,
        tuple(expect),
        "fill in the names the service needs (schema.name); set DATABASE_URL",
        ("DATABASE_URL",),
    )


def _query_timeout(text: Text) -> Suggestion | None:
    if not text.has(r"\b(query|statement) timeouts?\b") or not _available("postgres"):
        return None
    return Suggestion(
        "postgres",
        {"dsn": env("DATABASE_URL"), "settings": ["statement_timeout"]},
        ("setting.statement_timeout > 0ms",),
        "PostgreSQL cancels runaway queries (0 turns the timeout off): set DATABASE_URL with "
        "the service's user, whose setting counts",
        ("DATABASE_URL",),
    )


# --- host, disk, files, backups ------------------------------------------------------------
def _host(text: Text) -> Suggestion | None:
    memory = text.has(_SIZE + r"\+?\s*(of\s+)?(ram|memory)\b")
    cores = text.has(r"(\d+)\+?\s*(cpu\s+|vcpu\s+)?(cores|cpus|vcpus)\b")
    if not (memory or cores) or text.has(r"\b(limits?|max|quota)\b"):
        return None
    expect = []
    if memory:
        expect.append(f"memory_total >= {_size(memory)}")
    if cores:
        expect.append(f"cpu_count >= {cores.group(1)}")
    return Suggestion(
        "host",
        {},
        tuple(expect),
        "the machine the exporter runs on: run it on the service's host",
    )


def _disk(text: Text) -> Suggestion | None:
    size = text.has(_SIZE)
    if not text.has(r"\b(disk|storage|space)\b") or (size is None and "disk space" not in text.low):
        return None
    var: tuple[str, ...]
    if text.has(r"\bbackups?\b"):
        path, var = env("BACKUP_DIR"), ("BACKUP_DIR",)
    elif text.has(r"\bdata\b"):
        path, var = env("DATA_DIR"), ("DATA_DIR",)
    else:
        path, var = "/", ()
    if size is None:
        expect: tuple[str, ...] = ("free_ratio > 0.1",)
    elif text.has(r"\b(space|free|available)\b") and not text.has(r"\bstorage\b"):
        expect = (f"free >= {_size(size)}",)
    else:
        expect = (f"total >= {_size(size)}",)
    where = f"the filesystem of {path}" + (f": set {var[0]}" if var else "")
    return Suggestion("disk", {"path": path}, expect, where, var)


def _permissions(text: Text) -> Suggestion | None:
    mode = text.has(r"\(\s*0?([0-7]{3})\s*\)|\bpermissions?\s+(?:of\s+)?0?([0-7]{3})\b")
    if mode is None:
        return None
    octal = mode.group(1) or mode.group(2)
    var: tuple[str, ...]
    if text.has(r"\blogs?\b"):
        path, var = env("LOG_DIR") + "/*.log", ("LOG_DIR",)
    elif paths := _paths(text):
        path, var = paths[0], ()
    else:
        return None
    return Suggestion(
        "file",
        {"path": path},
        (f"mode == '0{octal}'", "world_writable == false"),
        f"the newest file matching the path must have mode 0{octal}",
        var,
    )


def _backup(text: Text) -> Suggestion | None:
    if not text.has(r"\bbackups?\b") or text.has(r"\b(restor\w*|recovery test\w*|retention)\b"):
        return None
    if not text.has(r"\b(completed|verif\w*|created|taken|daily|weekly)\b"):
        return None
    expect: tuple[str, ...] = ("exists == true",)
    if text.has(r"\b(completed|verif\w*|daily|weekly)\b") or text.cadence:
        weekly = text.cadence == "7d" or (
            text.has(r"\bweekly\b") is not None and not text.has(r"\bdaily\b")
        )
        expect += ("age < 8d" if weekly else "age < 26h",)
    return Suggestion(
        "file",
        {"path": env("BACKUP_DIR") + "/*"},
        expect,
        "the newest file the backup job wrote: set BACKUP_DIR (and narrow the glob, e.g. *.dump)",
        ("BACKUP_DIR",),
    )


def _paths(text: Text) -> list[str]:
    """File paths the item names, absolute first; relative ones under APP_DIR."""
    found = [
        c
        for c in text.code
        if " " not in c and ("/" in c or re.search(r"\.(ya?ml|json|toml|ini|conf|cfg|env)$", c))
    ]
    found += re.findall(r"(?<![\w`])(\.env|[\w-]+\.(?:ya?ml|json|toml|ini|conf|cfg))\b", text.plain)
    absolute = [p for p in found if p.startswith("/")]
    relative = [f"{env('APP_DIR')}/{p.removeprefix('./')}" for p in found if p not in absolute]
    return absolute + relative


def _config_file(text: Text) -> Suggestion | None:
    if not text.has(r"\bfiles?\b") or not text.has(r"\b(created|exists?|present|configured|set)\b"):
        return None
    paths = _paths(text)
    if not paths:
        return None
    var = ("APP_DIR",) if "${APP_DIR" in paths[0] else ()
    expect = ["exists == true", "world_writable == false"]
    note = "the file must exist and be writable only by its owner"
    if text.has(r"\b(env|environment|secrets?|keys?|passwords?|credentials?)\b"):
        expect.append("world_readable == false")
        note = "it holds secrets: it must exist and be readable only by the service"
    return Suggestion("file", {"path": paths[0]}, tuple(expect), note, var)


# --- the service and its monitoring stack: words -> one probe ---------------------------------
def _service(kind: str, spec: dict[str, Any], expect: tuple[str, ...], note: str) -> Suggestion:
    var = "PROCESS_NAME" if kind == "process" else "SERVICE_NAME"
    return Suggestion(kind, spec, expect, f"{note}: set {var}", (var,))


def _get(var: str, path: str, expect: tuple[str, ...], note: str) -> Suggestion:
    return Suggestion("http", {"url": env(var) + path}, expect, f"{note}: set {var}", (var,))


def _query(query: str, condition: str, note: str) -> Suggestion:
    """A PromQL item: the query's `value` against the condition."""
    return Suggestion(
        "prometheus",
        {"url": env("PROMETHEUS_URL"), "query": query},
        (condition,),
        f"{note}: set PROMETHEUS_URL and PROMETHEUS_JOB",
        ("PROMETHEUS_URL", "PROMETHEUS_JOB"),
    )


_FIXED: tuple[tuple[str, Suggestion], ...] = (
    (
        r"\blog ?rotat\w*|\blogrotate\b",
        _service(
            "file",
            {"path": "/etc/logrotate.d/" + env("SERVICE_NAME")},
            ("exists == true",),
            "logrotate's file for the service",
        ),
    ),
    (
        r"\bnon-?root\b|\bnot (as )?root\b",
        _service(
            "process",
            {"name": env("PROCESS_NAME")},
            ("running == true", "user != 'root'"),
            "the service's process runs, and not as root",
        ),
    ),
    (
        r"\brestart (policy|on failure)|\brestarts? (automatically )?on failure",
        _service(
            "command",
            {"argv": ["systemctl", "show", "--property=Restart", "--value", env("SERVICE_NAME")]},
            ("exit_code == 0", "stdout matches '^(always|on-failure|on-abnormal|on-abort)'"),
            "systemd restarts the unit when it fails (for a container restart policy, make "
            "this manual)",
        ),
    ),
    (
        r"\b(starts?|enabled|runs?)\b.*\bon boot\b|\bat boot\b",
        _service(
            "command",
            {"argv": ["systemctl", "is-enabled", "--quiet", env("SERVICE_NAME")]},
            ("exit_code == 0",),
            "the systemd unit is enabled",
        ),
    ),
    (
        r"\b(service|application|app)s? (is |are )?(started|running|starts successfully)\b"
        r"|\bcheck service status\b",
        _service(
            "process", {"name": env("PROCESS_NAME")}, ("running == true",), "the service's process"
        ),
    ),
    (
        r"\balert(ing)? rules\b",
        _get(
            "PROMETHEUS_URL",
            "/api/v1/rules?type=alert",
            ("status == 200", "json.data.groups.0.name exists"),
            "Prometheus has at least one group of alert rules loaded",
        ),
    ),
    (
        r"\balertmanager\b",
        _get("ALERTMANAGER_URL", "/-/ready", ("status == 200",), "Alertmanager is up"),
    ),
    (
        r"\bgrafana\b.*\b(installed|running|dashboards?|configured)\b",
        _get(
            "GRAFANA_URL",
            "/api/health",
            ("status == 200", "json.database == 'ok'"),
            "Grafana is up with its database",
        ),
    ),
)


def _fixed(text: Text) -> Suggestion | None:
    return next((found for words, found in _FIXED if text.has(words)), None)


def _installed(text: Text) -> Suggestion | None:
    if not text.has(r"\binstalled\b"):
        return None
    if python := text.has(r"\bpython\s*3\.(\d+)\+?"):
        minor = python.group(1)
        argv = ["python3", "-c", f"import sys; sys.exit(sys.version_info < (3, {minor}))"]
        note = f"python3 on the exporter's PATH is 3.{minor} or newer"
    elif text.has(r"\bdocker compose\b.*\binstalled\b"):
        argv, note = ["docker", "compose", "version"], "the docker compose plugin is installed"
    elif text.has(r"\bdocker\b.*\binstalled\b"):
        argv, note = ["docker", "--version"], "docker is installed"
    else:
        return None
    return Suggestion("command", {"argv": argv}, ("exit_code == 0",), note)


def _prometheus(text: Text) -> Suggestion | None:
    if not text.has(r"\bprometheus\b.*\b(scrap\w*|installed|running)\b|\bmetrics being collected"):
        return None
    if _available("prometheus"):
        job = env("PROMETHEUS_JOB")
        return _query(f'up{{job="{job}"}}', "value == 1", "Prometheus scrapes the service")
    return _get(
        "PROMETHEUS_URL",
        "/-/ready",
        ("status == 200",),
        "Prometheus is up (whether it scrapes the service needs the prometheus probe)",
    )


# --- targets with numbers: latency, error rate, throughput -----------------------------------
def _latency(text: Text) -> Suggestion | None:
    if not text.has(r"\b(p\d{2,3}|latency|response times?)\b"):
        return None
    bound = text.has(r"<\s*(\d+(?:\.\d+)?)\s*(ms|s)\b|\bunder (\d+(?:\.\d+)?)\s*(ms|s)\b")
    if bound is None:
        return None
    limit = f"{bound.group(1) or bound.group(3)}{bound.group(2) or bound.group(4)}"
    quantile = text.has(r"\bp(\d{2,3})\b")
    q = f"0.{quantile.group(1)}" if quantile else "0.99"
    if _available("prometheus"):
        job = env("PROMETHEUS_JOB")
        query = (
            f"histogram_quantile({q}, sum by (le) (rate("
            f'http_request_duration_seconds_bucket{{job="{job}"}}[5m])))'
        )
        return _query(
            query, f"value < {limit}", "placeholder query: use your service's latency histogram"
        )
    return Suggestion(
        "http",
        {"url": env("BASE_URL") + "/health"},
        ("status < 400", f"duration < {limit}"),
        "one request's time against the target; the p99 of real traffic needs the prometheus "
        "probe: set BASE_URL (and the path to a representative endpoint)",
        ("BASE_URL",),
    )


def _error_rate(text: Text) -> Suggestion | None:
    match = text.has(r"\berror rates?\b[^%]*?(\d+(?:\.\d+)?)\s*%")
    if match is None or not _available("prometheus"):
        return None
    job = env("PROMETHEUS_JOB")
    query = (
        f'sum(rate(http_requests_total{{job="{job}",code=~"5.."}}[5m])) / '
        f'sum(rate(http_requests_total{{job="{job}"}}[5m]))'
    )
    ratio = float(match.group(1)) / 100
    return _query(
        query, f"value < {ratio:g}", "placeholder query: use your service's request counter"
    )


def _throughput(text: Text) -> Suggestion | None:
    match = text.has(r"(\d[\d,]*)\+?\s*(req|requests)\s*/\s*(s|sec|second|min|minute)\b")
    if match is None or not text.has(r"\b(throughput|handle)\b") or not _available("prometheus"):
        return None
    per_minute = match.group(3).startswith("min")
    job = env("PROMETHEUS_JOB")
    query = f'sum(rate(http_requests_total{{job="{job}"}}[5m])){" * 60" if per_minute else ""}'
    return _query(
        query,
        f"value >= {match.group(1).replace(',', '')}",
        "placeholder query: this is the live rate; capacity is shown by a load test, so make "
        "the item manual if traffic is lower",
    )


Recogniser = Callable[[Text], Suggestion | None]

_STRONG: tuple[Recogniser, ...] = (_endpoint,)
"""An endpoint path is clear enough to win over words such as 'tests' or 'documented'."""

_RECOGNISERS: tuple[Recogniser, ...] = (
    _health,
    _database_tls,
    _data_service,
    _schema,
    _query_timeout,
    _tls,
    _host,
    _permissions,
    _backup,
    _disk,
    _fixed,
    _config_file,
    _installed,
    _prometheus,
    _latency,
    _error_rate,
    _throughput,
)
