"""`serve --web.config.file` as Prometheus exporters take it: TLS from real certificates
(trustme), bcrypt Basic auth in front of every endpoint, client certificates, extra headers,
and a clear FILE:LINE error (exit 2) for each mistake in the file."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme

from tests.support.exporter import Exporter, wait_for

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[2]

PASSWORD = "correct horse battery staple"
TOKEN = "read-secret-0123456789abcdef"
CONFIG = """
exporter:
  state: "sqlite:///{dir}/state.db"
  api_tokens:
    - {{name: grafana, token_env: WC_READ_TOKEN, roles: [read]}}
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: on-call
            title: On-call rotation established
            manual: {{}}
"""
HSTS = "max-age=31536000"


@dataclass
class Pki:
    directory: Path
    ca: trustme.CA
    client: trustme.LeafCert

    def verify(self, with_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if with_client_cert:
            self.client.configure_cert(context)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    return Pki(directory, ca, ca.issue_cert("prometheus@example.com"))


class TlsExporter(Exporter):
    """The exporter served over HTTPS behind Basic auth; readiness is asked the same way."""

    verify: ssl.SSLContext

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"exporter exited with {self.proc.returncode}:\n{self.output()}")
        try:
            response = self.https("/health/ready")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def https(self, path: str, **kwargs: object) -> httpx.Response:
        kwargs.setdefault("auth", ("prometheus", PASSWORD))
        return httpx.get(f"{self.url}{path}", verify=self.verify, timeout=5, **kwargs)  # type: ignore[arg-type]


def start(pki: Pki, tmp_path: Path, web: str, client_cert: bool = False) -> TlsExporter:
    config = tmp_path / "readiness.yaml"
    config.write_text(CONFIG.format(dir=tmp_path))
    # Relative paths in the web config are relative to the web config file.
    web_config = pki.directory / f"web-{tmp_path.name}.yml"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web_config.write_text(web.format(hash=hashed))
    exporter = TlsExporter(
        config, env={"WC_READ_TOKEN": TOKEN}, args=("--web.config.file", str(web_config))
    )
    exporter.verify = pki.verify(with_client_cert=client_cert)
    exporter.start()
    return exporter


WEB = """\
tls_server_config:
  cert_file: server.crt
  key_file: server.key
http_server_config:
  headers:
    Strict-Transport-Security: "{hsts}"
basic_auth_users:
  prometheus: "{hash}"
""".replace("{hsts}", HSTS)


@pytest.fixture(scope="module")
def served(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsExporter]:
    exporter = start(pki, tmp_path_factory.mktemp("tls"), WEB)
    yield exporter
    exporter.stop()


def test_metrics_are_scraped_over_https_with_basic_auth(served: TlsExporter) -> None:
    response = served.https("/metrics")
    assert response.status_code == 200
    assert "readiness_item_passing" in response.text
    assert response.headers["strict-transport-security"] == HSTS
    assert response.headers["x-frame-options"] == "DENY"
    # plain HTTP on the same port gets no answer
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{served.port}/metrics", timeout=5)


@pytest.mark.parametrize("path", ["/", "/metrics", "/health/live", "/status", "/static/status.js"])
def test_every_endpoint_refuses_a_wrong_or_missing_login(served: TlsExporter, path: str) -> None:
    # bcrypt refuses passwords over 72 bytes: such a login is wrong, not a server error
    for auth in (None, ("prometheus", "wrong"), ("nobody", PASSWORD), ("prometheus", "a" * 73)):
        response = served.https(path, auth=auth)
        assert response.status_code == 401, (path, auth)
        assert response.headers["www-authenticate"].startswith("Basic")
        assert response.headers["strict-transport-security"] == HSTS
    assert served.https(path).status_code == 200


def test_api_tokens_still_work_and_a_web_user_may_read(served: TlsExporter) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert served.https("/status", auth=None, headers=bearer).status_code == 200
    assert served.https("/status", auth=("browser", TOKEN)).status_code == 200  # token as password
    assert served.https("/api/v1/attestations", auth=None, headers=bearer).status_code == 200
    assert served.https("/status").json()["checklists"][0]["name"] == "app"
    refused = httpx.post(
        f"{served.url}/api/v1/attestations",
        json={"checklist": "app", "item": "on-call", "by": "x"},
        auth=("prometheus", PASSWORD),
        verify=served.verify,
        timeout=5,
    )
    assert refused.status_code in (401, 403)  # writes need an API token with a role


def test_a_client_certificate_is_required_when_configured(pki: Pki, tmp_path: Path) -> None:
    web = (
        "tls_server_config:\n"
        "  cert_file: server.crt\n"
        "  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        f"  client_ca_file: {pki.directory / 'ca.crt'}\n"
        "  min_version: TLS13\n"
    )
    exporter = start(pki, tmp_path, web, client_cert=True)
    try:
        assert exporter.https("/metrics", auth=None).status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{exporter.url}/metrics", verify=pki.verify(), timeout=5)
        tls12 = pki.verify(with_client_cert=True)
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{exporter.url}/metrics", verify=tls12, timeout=5)
    finally:
        exporter.stop()


def test_self_probes_of_the_default_config_use_https_when_tls_is_on(
    pki: Pki, tmp_path: Path
) -> None:
    config = tmp_path / "readiness.yaml"
    shutil.copy(REPO / "config/readiness.example.yaml", config)
    web_config = pki.directory / f"web-{tmp_path.name}.yml"
    web_config.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
    exporter = TlsExporter(
        config,
        # The self-probes trust the test's CA as a user's would trust theirs.
        env={
            "READINESS_STATE": f"sqlite:///{tmp_path}/s.db",
            "SSL_CERT_FILE": str(pki.directory / "ca.crt"),
        },
        args=("--web.config.file", str(web_config)),
    )
    exporter.env.pop("READINESS_SELF_URL", None)  # derived by serve, not given
    exporter.verify = pki.verify()

    def self_probes() -> list[dict[str, object]] | None:
        doc = exporter.https("/status", auth=None, headers={"Accept": "application/json"}).json()
        items = [i for s in doc["checklists"][0]["sections"] for i in s["items"]]
        probes = [i for i in items if i["id"] in ("health-live", "metrics-endpoint")]
        return probes if all(p["reason"] != "not_run" for p in probes) else None

    exporter.start()
    try:
        probes = wait_for(self_probes, 30, "the self-probes to run", exporter)
    finally:
        exporter.stop()
    assert len(probes) == 2
    for item in probes:
        assert item["passing"], item
        assert f"https://127.0.0.1:{exporter.port}/" in json.dumps(item)


BAD = [
    ("http_server_config:\n  headers:\n    X-Powered-By: me\n", 3, "'X-Powered-By' can not be"),
    ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", 3, "expected one of"),
    ("basic_auth_users:\n  prometheus: plaintext\n", 2, "not a bcrypt hash"),
    ("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n", 2, "cannot load"),
    (
        "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [X]\n",
        4,
        "cipher_suites: not supported",
    ),
    (
        "tls_server_config:\n  cert_file: a\n  key_file: b\n"
        "  client_auth_type: RequireAndVerifyClientCert\n",
        4,
        "needs client_ca_file",
    ),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS99\n", 4, "TLS13"),
    ("http_server_config: {}\nbasic_auth_user: {}\n", 2, "basic_auth_user: unknown setting"),
    ("a: [1\nb: 2\n", 2, "not valid YAML"),
    ("a: &x [1]\nb: *x\n", 2, "aliases are not supported"),
    (
        'http_server_config:\n  headers:\n    Content-Security-Policy: "a\\nX-Evil: 1"\n',
        3,
        "no line breaks",
    ),
    ("http_server_config:\n  headers:\n    Content-Security-Policy: \u20ac\n", 3, "Latin-1"),
]


def serve(directory: Path, web: Path) -> subprocess.CompletedProcess[str]:
    """`serve` with a good config and the web config `web`, expected to refuse to start."""
    config = directory / "readiness.yaml"
    config.write_text(CONFIG.format(dir=directory))
    command = [sys.executable, "-m", "exporter", "serve", "--config", str(config)]
    return subprocess.run(
        [*command, "--web.config.file", str(web)],
        env={"WC_READ_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_a_bad_web_config_exits_2_naming_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    web = tmp_path / "web.yml"
    web.write_text(text)
    done = serve(tmp_path, web)
    assert done.returncode == 2, done.stderr
    assert f"{web}:{line}:" in done.stderr and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_web_config_is_named(tmp_path: Path) -> None:
    done = serve(tmp_path, tmp_path / "absent.yml")
    assert done.returncode == 2
    assert f"{tmp_path / 'absent.yml'}: cannot read" in done.stderr


def test_the_files_we_accept_are_valid_for_prometheus_too(pki: Pki) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    web = pki.directory / "web-promtool.yml"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web.write_text(WEB.format(hash=hashed))
    done = subprocess.run(
        [promtool, "check", "web-config", str(web)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
