"""The vocabulary of checks: which words name each check, which do not, and that every check's
probe, as import writes it, is a config the loader accepts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.importing.checks import CHECKS, PLACEHOLDERS
from exporter.importing.importer import import_checklist, render_yaml
from exporter.importing.recognise import VOCABULARY, Text, stem, suggest
from exporter.loader import parse_config

REPO = Path(__file__).resolve().parents[2]

# (item as a team might write it, the check it names): one or more per check, our own words.
POSITIVE = [
    ("Health check endpoint answers", "health-endpoint"),
    ("The service has a health check", "health-endpoint"),
    ("Readiness probe wired to the load balancer", "readiness-endpoint"),
    ("Liveness probe in place", "liveness-endpoint"),
    ("Metrics endpoint in Prometheus format", "metrics-endpoint"),
    ("`/api/v1/ping` endpoint returns 204", "endpoint"),
    ("Swagger UI published for partners", "api-docs"),
    ("OpenAPI documentation served by the API", "api-docs"),
    ("Postgres connections require SSL", "postgres-ssl"),
    ("TLS certificate renewed before it expires", "tls-certificate"),
    ("HTTPS everywhere", "tls-certificate"),
    ("Plain HTTP redirects to HTTPS", "https-redirect"),
    ("HSTS enabled with a long max-age", "hsts-header"),
    ("CSP set on every page", "csp-header"),
    ("X-Frame-Options set to DENY", "frame-options-header"),
    ("`nosniff` on all responses", "content-type-options-header"),
    ("Referrer-Policy header sent", "referrer-policy-header"),
    ("No `X-Powered-By` header in answers", "fingerprint-headers"),
    ("Security headers present on the site", "security-headers"),
    ("CORS allows the admin console's origin", "cors"),
    ("Responses are served with gzip", "compression"),
    ("HTTP/2 enabled on the edge", "http2"),
    ("robots.txt published", "robots-txt"),
    ("sitemap.xml is reachable", "sitemap"),
    ("Favicon present", "favicon"),
    ("DNS records point at the new load balancer", "dns"),
    ("Static files go through a CDN", "cdn"),
    ("PostgreSQL 16+ on the database host", "postgres-version"),
    ("Slow query logging turned on", "postgres-slow-query-log"),
    ("Statement timeout set for the app role", "postgres-statement-timeout"),
    ("Streaming replication to a hot standby", "postgres-replica"),
    ("Replication lag under 30 seconds", "postgres-replication-lag"),
    ("WAL archiving enabled", "postgres-archiving"),
    ("`pg_stat_statements` extension enabled in PostgreSQL", "postgres-extension"),
    ("PostgreSQL is reachable from the app servers", "postgres-up"),
    ("Redis 7.2+ deployed", "redis-version"),
    ("Redis persistence (RDB snapshots) on", "redis-persistence"),
    ("Redis AOF turned on", "redis-aof"),
    ("Redis maxmemory set", "redis-maxmemory"),
    ("Redis eviction policy chosen", "redis-eviction-policy"),
    ("Redis is up", "redis-up"),
    ("Daemon runs as a non-root account", "process-not-root"),
    ("systemd unit enabled", "systemd-enabled"),
    ("Restart policy set on the unit", "systemd-restart"),
    ("Worker process is running", "process-running"),
    ("At least 16GB of RAM and 8 cores", "host-size"),
    ("Disk usage below 85%", "disk"),
    ("Memory usage under 90%", "memory-headroom"),
    ("Load average below 6 on the app hosts", "load-average"),
    ("Config file `/etc/app/app.conf` has mode 600", "file-permissions"),
    ("Logs are rotated", "log-rotation"),
    ("Application log directory receives new lines", "log-fresh"),
    ("Nightly database backup", "backup-fresh"),
    ("Prometheus scrapes the service", "prometheus-up"),
    ("Alerting rules loaded into Prometheus", "alert-rules"),
    ("Alertmanager is reachable", "alertmanager"),
    ("Grafana running", "grafana"),
]

# Items under a Daily/Weekly/... heading (their cadence given) that name a check only there.
RECURRING = [
    ("Backups run", "job-ping"),
    ("Nightly import job runs", "job-ping"),
    ("Scheduled export to the warehouse ran", "job-ping"),
    ("Cron job for the price import", "job-ping"),
]

# Items that must stay manual: near misses of the checks above, in our own words.
NEGATIVE = [
    # A link in the text names nothing: not its target, not a URL written out.
    "Design principle: keep services stateless ([why](https://blog.example.com/tls-https-ssl))",
    "SLOs agreed with the business, see https://docs.example.com/slo/health-check",
    "[Read more](https://example.com/postgres-redis-backup-nightly)",
    "Logging follows the [house guide](https://wiki.example.com/ssl-certificate-setup)",
    "Keep to the house style <https://example.com/hsts-cors-gzip>",
    # An architecture rule is not an endpoint.
    "Follow the one-hop rule between services",
    "One-hop rule: each route from the gateway at `/api` reaches its service directly",
    # People's work, whatever check it mentions.
    "Health endpoint tests pass in CI",
    "Backup restore rehearsed and documented",
    "TLS setup reviewed by security",
    # Words of a check in another sense.
    "Compress old log archives with gzip",
    "Sitemap HTML page for visitors",
    "TLS certificates for internal services rotated",
    "DNS prefetch hints added to the page head",
    "Preconnect: DNS lookup and TLS handshake happen early",
    "Kubernetes deployment runs three replicas",
    "Redis-backed rate limiting",
    "Memory limits set on the container",
    "Build process is running in CI",
    "Encryption at rest for the database",
    "Scan images for secrets such as database SSL keys",
    "Point-in-time recovery completes in less than an hour",
    "Required tables created in PostgreSQL",
    "Images are built from a non-root Dockerfile user",
    "Non-root user set up for the database",
    "Backups kept for 30 days (retention)",
    "Plenty of memory",
    "Load average watched during the launch",
    "System load under 80%",
]


@pytest.mark.parametrize(("title", "check"), POSITIVE)
def test_words_that_name_a_check_suggest_it(title: str, check: str) -> None:
    found = suggest(Text.of(title))
    assert found is not None, title
    assert check in found.check.split("+"), (title, found.check)


@pytest.mark.parametrize("title", NEGATIVE)
def test_near_misses_stay_manual(title: str) -> None:
    found = suggest(Text.of(title))
    assert found is None, (title, found and found.check)


@pytest.mark.parametrize(("title", "check"), RECURRING)
def test_a_job_under_a_cadence_heading_reports_in_and_elsewhere_does_not(
    title: str, check: str
) -> None:
    found = suggest(Text.of(title, "1d"))
    assert found is not None and found.check == check and found.kind == "ping", title
    assert found.spec == {} and found.env == ()  # nothing to probe, no placeholder to set
    elsewhere = suggest(Text.of(title))
    assert elsewhere is None or elsewhere.kind != "ping"


def test_a_job_being_configured_or_verified_is_not_a_ping() -> None:
    for title in ("Automated backup cron job configured", "Verify backups completed"):
        found = suggest(Text.of(title, "1d"))
        assert found is None or found.kind != "ping", title


def test_every_check_has_a_positive_example() -> None:
    assert {c.id for c in CHECKS} == {check for _, check in (*POSITIVE, *RECURRING)}


def test_words_the_item_gives_fill_the_probe() -> None:
    endpoint = suggest(Text.of("`/api/v1/ping` endpoint returns 204"))
    assert endpoint is not None
    assert endpoint.spec == {"url": "${BASE_URL:?http://127.0.0.1:8000}/api/v1/ping"}
    assert endpoint.expect == ("status == 204",)
    tls = suggest(Text.of("Only TLS 1.3 offered"))
    assert tls is not None and tls.spec["min_version"] == "TLS1.3"
    plain_tls = suggest(Text.of("TLS certificate valid"))
    assert plain_tls is not None and "min_version" not in plain_tls.spec
    host = suggest(Text.of("At least 16GB of RAM and 8 cores"))
    assert host is not None and host.expect == ("memory_total >= 16GB", "cpu_count >= 8")
    disk = suggest(Text.of("Backup storage provisioned (2TB)"))
    assert disk is not None
    assert (disk.spec, disk.expect) == (
        {"path": "${BACKUP_DIR:?/var/backups/app}"},
        ("total >= 2TB",),
    )
    weekly = suggest(Text.of("Backups taken", cadence="7d"))
    assert weekly is not None and "age < 8d" in weekly.expect
    mode = suggest(Text.of("Log files have mode 0640"))
    assert mode is not None and mode.spec == {"path": "${LOG_DIR:?/var/log/app}/*.log"}


def test_checks_on_one_target_merge_their_conditions() -> None:
    found = suggest(Text.of("Redis maxmemory and eviction policy configured"))
    assert found is not None and found.check == "redis-maxmemory+redis-eviction-policy"
    assert found.expect == ("info.maxmemory > 0", "info.maxmemory_policy != 'noeviction'")
    headers = suggest(Text.of("Security headers: HSTS and CSP"))
    assert headers is not None and headers.check == "hsts-header+csp-header"


def test_the_suggestion_names_its_check_and_the_words_that_triggered_it() -> None:
    found = suggest(Text.of("**Caching**: Redis is up and running"))
    assert found is not None and found.check == "redis-up"
    assert found.words and all(w in found.note for w in found.words)
    assert found.note.startswith('check redis-up, from the words "redis … ')
    assert found.note.endswith("Set REDIS_URL") and found.env == ("REDIS_URL",)


def test_a_name_motivated_by_a_document_is_left_out_when_that_document_is_held_out() -> None:
    tagged = "Check service status"
    assert suggest(Text.of(tagged)) is not None
    assert suggest(Text.of(tagged), VOCABULARY.without("stock-data-collector")) is None
    # the check's own vocabulary stays
    assert suggest(Text.of("Health check"), VOCABULARY.without("stock-data-collector"))
    assert "stock-data-collector" in VOCABULARY.documents


def test_stems_join_the_forms_of_a_word_and_keep_protocol_names_apart() -> None:
    assert stem("rotation") == stem("rotated") == stem("rotate")
    assert stem("backups") == stem("backup")
    assert stem("scraping") == stem("scrapes") == stem("scrape")
    assert stem("automatically") == stem("automated") == stem("automation")
    assert stem("https") != stem("http")


def test_every_check_as_imported_is_a_config_the_loader_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in PLACEHOLDERS:
        monkeypatch.delenv(name, raising=False)
    document = "# Vocabulary\n\n## Every check\n\n" + "".join(f"- [ ] {t}\n" for t, _ in POSITIVE)
    imported = import_checklist(document, "vocabulary", "vocabulary.md")
    loaded = parse_config(render_yaml(imported), "vocabulary.yaml")
    items = [i for c in loaded.config.checklists for s in c.sections for i in s.items]
    assert len(items) == len(POSITIVE)
    kinds = {c.id: c.kind for c in CHECKS}
    for item, (title, check) in zip(items, POSITIVE, strict=True):
        assert item.kind == kinds[check], title


def test_import_eval_scores_labelled_documents_through_the_cli(tmp_path: Path) -> None:
    docs, labels = tmp_path / "docs", tmp_path / "labels"
    docs.mkdir()
    labels.mkdir()
    (docs / "launch.md").write_text(
        "# Launch\n\n## Ops\n\n"
        "- [ ] Health check endpoint\n"  # line 5: probe, probed
        "- [ ] TLS certificate valid\n"  # 6: probe, probed
        "- [ ] Runbook written\n"  # 7: manual, manual
        "- [ ] Redis is up\n"  # 8: labelled manual here, probed: a wrong probe
        "- [ ] Firewall allows only 443\n"  # 9: labelled probe here, manual: a miss
    )
    rows = ["5\tprobe\thttp\t", "6\tprobe\ttls\t", "7\tmanual\t\t", "8\tmanual\t\t", "9\tprobe\t\t"]
    (labels / "launch.labels.tsv").write_text("line\tlabel\tkind\twhy\n" + "\n".join(rows) + "\n")
    (docs / "notes.md").write_text("# Notes\n\nNo checklist here.\n")
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "import_eval.py"),
            "--labels",
            str(labels),
            str(docs),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    launch = next(line for line in done.stdout.splitlines() if line.startswith("launch"))
    # recall, its counts, precision, its counts, leave-one-out recall; then the CLI's verdict
    figures = re.findall(r"\d+\.\d+|\d+/\d+", launch)
    assert figures == ["0.67", "2/3", "0.67", "2/3", "0.67"]
    assert launch.endswith(" ok")
    assert "notes" in done.stdout and "no labels" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("pooled")
    absent = subprocess.run(
        [sys.executable, str(REPO / "bench" / "import_eval.py"), str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert absent.returncode == 2 and "no such folder" in absent.stderr
