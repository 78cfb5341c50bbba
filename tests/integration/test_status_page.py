"""/status for people: the page a browser gets from a running daemon, in headless Chromium.

Screenshots (desktop, and a 390 px wide phone) are saved under test-artifacts/ to look at.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.browser import HEADLESS, chromium
from tests.support.exporter import Exporter, wait_for
from tests.support.servers import HttpTarget

REPO = Path(__file__).parents[2]
ARTIFACTS = REPO / "test-artifacts"
TOKEN = "s3cret-token-for-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HTML = {"Accept": "text/html,*/*;q=0.8"}
IMPORTED = """\
# Launch Checklist
## Payments API

Ticked before go-live; kept true by readiness-exporter.

## Health Checks
- [ ] `/health` endpoint returns 200
- [ ] `/metrics` endpoint returns Prometheus format metrics
- [ ] **Disk**: Check disk space

## Security
- [ ] Log files have appropriate permissions (640)
- [ ] **API Keys**: All required API keys obtained
  - [ ] Stripe API key
- [x] On-call rotation established

## Daily
- [ ] Review error logs
"""


def browse(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            *HEADLESS,
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Exporter]:
    source = tmp_path / "launch.md"
    source.write_text(IMPORTED)
    config = tmp_path / "launch.yaml"
    imported = subprocess.run(
        [sys.executable, "-m", "exporter", "import", str(source), "-o", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    # An attest token, so the page offers attesting (the API checks it).
    text = config.read_text().replace(
        "exporter:\n",
        "exporter:\n  api_tokens:\n    - {name: oncall, token_env: T_ONCALL, roles: [attest]}\n",
    )
    config.write_text(text)
    target = HttpTarget()
    target.start()
    exporter = Exporter(
        config,
        env={
            "BASE_URL": target.url,
            "LOG_DIR": str(tmp_path),
            "READINESS_STATE": f"sqlite:///{tmp_path}/state.db",
            "T_ONCALL": TOKEN,
        },
    )
    exporter.start()
    try:
        wait_for(lambda: _ran(exporter), 30, "the probed items' first runs", exporter)
        yield exporter
    finally:
        exporter.stop()
        target.stop()


def _ran(exporter: Exporter) -> bool:
    doc = exporter.get("/status", headers=BEARER).json()
    items = [i for s in doc["checklists"][0]["sections"] for i in s["items"]]
    return all(i["reason"] != "not_run" for i in items if i["kind"] != "manual")


def test_status_is_json_for_api_clients_and_html_for_browsers(daemon: Exporter) -> None:
    assert daemon.get("/status", headers=BEARER).headers["content-type"] == "application/json"
    html = {"Accept": "text/html,*/*;q=0.8"}
    # with tokens configured /status needs one: a browser is asked to log in, an API client not
    refused = daemon.get("/status", headers=html)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Basic realm=")
    assert "basic" not in daemon.get("/status").headers["www-authenticate"].lower()
    page = daemon.get("/status", headers=html, auth=("anyone", TOKEN))
    assert page.headers["content-type"].startswith("text/html")
    assert "Payments API" in page.text
    # nothing loaded from elsewhere: the script and the styles are the app's own
    assert re.findall(r"(?:src|href)='([^'#]*)'", page.text) == [
        "static/status.css",
        "",
        "metrics",
        "status?format=json",
        "static/status.js",
    ]
    assert "data-attester='1'" in page.text  # logged in with an attest token: forms shown
    as_html = daemon.get("/status?format=html", headers=BEARER)
    assert as_html.headers["content-type"].startswith("text/html")
    as_json = daemon.get("/status?format=json", headers={**html, **BEARER})
    assert as_json.headers["content-type"] == "application/json"


def test_the_page_attests_the_way_its_form_does(daemon: Exporter) -> None:
    """The form posts JSON to the attestation API with the browser's login and the page's
    anti-forgery token (or a pasted bearer token); the item then shows attested, by whom."""
    item = "on-call-rotation-established"
    form = daemon.get("/status?format=html", headers=BEARER).text
    assert f"data-checklist='launch' data-item='{item}'" in form
    script = daemon.get("/static/status.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "f, 'api/v1/attestations'" in script.text  # the form posts there
    assert "<script>" not in form and "<style>" not in form  # the CSP allows no inline code
    logged_in = daemon.get("/status", headers=HTML, auth=("alice", TOKEN)).text
    csrf = re.search(r"<meta name='csrf-token' content='([0-9a-f]{64})'>", logged_in)
    assert csrf is not None
    body = {"checklist": "launch", "item": item, "by": "alice", "note": "rota in PagerDuty"}
    url = f"{daemon.url}/api/v1/attestations"
    # the same Basic login without the page's token is refused: it could be a forged request
    forged = httpx.post(url, json=body, auth=("alice", TOKEN), timeout=5)
    assert forged.status_code == 403, forged.text
    assert "X-CSRF-Token" in forged.json()["error"]
    posted = httpx.post(
        url, json=body, auth=("alice", TOKEN), headers={"X-CSRF-Token": csrf[1]}, timeout=5
    )
    assert posted.status_code == 201, posted.text
    page = daemon.get("/status?format=html", headers=BEARER).text
    assert f"class='item ok depth-0' id='launch--{item}'" in page
    assert "attested by alice" in page and "rota in PagerDuty" in page


def test_status_page_in_chromium_shows_items_states_and_evidence(
    daemon: Exporter, tmp_path: Path
) -> None:
    # the browser logs in with the token as the password
    url = f"http://oncall:{TOKEN}@127.0.0.1:{daemon.port}/status"
    dom = browse(tmp_path, url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    name = "launch"
    # every item, in its state: green, red, amber (waiting for a person)
    assert f'class="item ok depth-0" id="{name}--health-endpoint-returns-200"' in html
    assert f'class="item ok depth-0" id="{name}--disk"' in html
    assert f'class="item bad depth-0" id="{name}--metrics-endpoint-returns-prometheus' in html
    assert f'class="item warn depth-0" id="{name}--on-call-rotation-established"' in html
    assert f'class="item warn depth-1" id="{name}--stripe-api-key"' in html  # nested
    assert html.count('<li class="item') == 8
    # evidence: the failed condition and the facts behind it, inside <details>
    assert "<li class=\"broken\"><code>body contains '# TYPE' (got 'not found')</code>" in html
    assert "<th>status</th><td>404</td>" in html
    assert "due in 23 h" in html  # the daily item
    # the score and readiness up top; attest forms on the manual items only
    assert "<h1>Payments API</h1>" in html and "Launch Checklist" in html
    assert html.count('<form class="attest"') == 4
    assert 'data-attester="1"' in html
    assert TOKEN not in html

    ARTIFACTS.mkdir(exist_ok=True)
    failing = f"{url}#{name}--metrics-endpoint-returns-prometheus-format-metrics"
    for label, where, width, height in (
        ("desktop", url, 1280, 1000),
        ("phone", url, 390, 1400),
        ("phone-evidence", failing, 390, 2200),  # a link to an item opens its evidence
    ):
        shot = ARTIFACTS / f"status-{label}.png"
        shot.unlink(missing_ok=True)
        done = browse(tmp_path, where, f"--screenshot={shot}", f"--window-size={width},{height}")
        assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
        assert png_size(shot) == (width, height)
        assert shot.stat().st_size > 20_000, f"{shot} looks blank"
