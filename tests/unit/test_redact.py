"""The redactor: what it masks, what it leaves readable, that it costs linear time, and the
secrets the loader feeds it."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest

from exporter.loader import ConfigError, parse_config
from exporter.redact import MASK, Redactor, replace_url_passwords


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://app:hunter2@db:5432/x", f"postgresql://app:{MASK}@db:5432/x"),
        ("redis://:hunter2@cache:6379/0", f"redis://:{MASK}@cache:6379/0"),
        # An unencoded @ in the password: everything up to the host's @ is the password.
        ("postgresql://app:p@ss@db/x", f"postgresql://app:{MASK}@db/x"),
        ("see a://b and c://d:e@f", f"see a://b and c://d:{MASK}@f"),
        ("host=db password=hunter2 user=app", f"host=db password={MASK} user=app"),
        ("https://h/?api_key=k3y&x=1", f"https://h/?api_key={MASK}&x=1"),
        (
            "https://s3/o?X-Amz-Signature=ab12&X-Amz-Credential=AKIA/x&v=2",
            f"https://s3/o?X-Amz-Signature={MASK}&X-Amz-Credential={MASK}&v=2",
        ),
        ("https://h/x?access_token=t0k&sig=abc", f"https://h/x?access_token={MASK}&sig={MASK}"),
        ('{"password": "hunter2", "user": "app"}', f'{{"password": "{MASK}", "user": "app"}}'),
        ("Authorization: Basic YWxpY2U6cHc=", f"Authorization: Basic {MASK}"),
        ('{"Authorization": "Bearer a.b.c"}', f'{{"Authorization": "Bearer {MASK}"}}'),
        ("curl -H 'X-Api-Key: 12345678'", f"curl -H 'X-Api-Key: {MASK}'"),
        ("sent Bearer eyJhbGciOi.x.y to it", f"sent Bearer {MASK} to it"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI", f"AWS_SECRET_ACCESS_KEY={MASK}"),
    ],
)
def test_masks_credential_shapes(text: str, masked: str) -> None:
    assert Redactor().text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/health?verbose=1",
        'WWW-Authenticate: Basic realm="ops"',
        "Bearer tokens are checked by the gateway",
        "json.token == 'x' (got 'y')",
        "connect to 127.0.0.1:5432 refused",
        f"password={MASK}",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert Redactor().text(text) == text


def test_masks_registered_secrets_as_written_and_url_encoded() -> None:
    redactor = Redactor(["p@ss word!", "abc"])  # `abc`: too short to mask safely
    assert redactor.text("got p@ss word! back") == f"got {MASK} back"
    assert redactor.text("url has p%40ss%20word%21 in it") == f"url has {MASK} in it"
    assert redactor.text("abc") == "abc"


def test_update_replaces_the_secrets() -> None:
    redactor = Redactor(["first-secret"])
    redactor.update(["second-secret"])
    assert redactor.text("first-secret second-secret") == f"first-secret {MASK}"


def test_value_masks_nested_strings_and_secret_named_keys() -> None:
    facts = {
        "header.set-cookie": "sid=1",
        "json.api_key": "k",
        "json.count": 3,
        "body": ["known-secret", ("x",)],
        "setting.password_encryption": "scram-sha-256",
    }
    assert Redactor(["known-secret"]).value(facts) == {
        "header.set-cookie": MASK,
        "json.api_key": MASK,
        "json.count": 3,
        "body": [MASK, ["x"]],
        "setting.password_encryption": "scram-sha-256",
    }


def _seconds(mask: Callable[[str], str], text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        mask(text)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize(
    "unit",
    [
        "a",  # letters: the old `scheme://` pattern rescanned them from every position
        "a.",
        "key=v&",
        "x://",
        "://a:b",
        "password=",
        "Basic ",
        "_" * 99 + ":",
    ],
)
def test_masking_time_grows_linearly(unit: str) -> None:
    redactor = Redactor(["a-registered-secret"])
    small = unit * (64 * 1024 // len(unit))
    large = small * 10
    small_time = _seconds(redactor.text, small)
    large_time = _seconds(redactor.text, large)
    # The quadratic masker took 4.7 s on 64 KiB of letters; linear is milliseconds, and ten
    # times the text costs about ten times as much (quadratic would be a hundred).
    assert small_time < 0.25
    assert large_time < 30 * small_time + 0.05


def test_the_loader_registers_every_secret_a_config_can_pass_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "PW": "url-password",
        "Q": "query-token",
        "CMD": "command-password",
        "STORE": "store-password",
        "TOKEN_VALUE": "bearer-value",
        "PROM_PW": "prom-password",
        "DAEMON_SECRET": "only-in-the-daemon",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    loaded = parse_config("""
exporter:
  state: "postgresql://app:${STORE}@db/state"
checklists:
  - name: app
    sections:
      - name: s
        items:
          - id: web
            title: Web
            http:
              url: "http://alice:${PW}@web/health?access_token=${Q}&verbose=1"
              headers: {Authorization: "Bearer ${TOKEN_VALUE}"}
          - id: script
            title: Script
            command: {argv: [env], env: {DB_PASSWORD: "${CMD}"}, inherit_env: true}
          - id: prom
            title: Prometheus
            prometheus:
              url: http://prom:9090
              query: up
              basic_auth: {username: scraper, password_env: PROM_PW}
""")
    derived = {
        base64.b64encode(b"alice:url-password").decode(),
        base64.b64encode(b"scraper:prom-password").decode(),
        base64.b64encode(b"app:store-password").decode(),
        "Bearer bearer-value",
    }
    assert {*env.values(), *derived} <= loaded.secrets
    assert "verbose" not in " ".join(loaded.secrets)


def test_config_errors_name_the_variable_instead_of_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LISTEN_AT", "not-an-address")
    with pytest.raises(ConfigError) as caught:
        parse_config('exporter: {listen: "${LISTEN_AT}"}\nchecklists: []\n', "c.yaml")
    assert "'${LISTEN_AT}' is not host:port" in str(caught.value)
    assert "not-an-address" not in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://app:hunter2@db:5432/x",
        "redis://:hunter2@cache:6379/0",
        "postgresql://app:p@ss@db/x",
        "see a://b and c://d:e@f",
        "none here: https://app@db/x, https://db:5432/x, mailto:ann@example.com",
    ],
)
def test_one_rule_for_a_password_in_a_url(text: str) -> None:
    """What the loader refuses in a file is what every output masks and what import leaves out
    of the config it writes (the password, nothing else)."""
    from exporter.importing.importer import fill, import_checklist, render_yaml

    def refused(title: str) -> bool:
        config = "checklists: [{name: a, sections: [{name: s, items: [{id: x, title: TITLE,"
        try:
            parse_config(config.replace("TITLE", repr(title)) + " manual: {}}]}]}]\n")
        except ConfigError as exc:
            return any("password is written in the file" in str(i) for i in exc.issues)
        return False

    masked = Redactor().text(text) != text
    assert refused(text) is masked
    written = render_yaml(fill(import_checklist(f"# T\n\n- [ ] {text}\n", "t", "t.md"), {}))
    title = parse_config(written).config.checklists[0].sections[0].items[0].title
    assert not refused(title)
    assert title == replace_url_passwords(text)
    assert ("hunter2" in written) is ("hunter2" in text and not masked)


def test_each_spec_knows_its_secret_fields() -> None:
    """The loader asks each probe spec; the kind with an unusual secret field says so itself."""
    from exporter.probes import command, http, prometheus

    environ = {"PROM_PASSWORD": "pr0m-pass", "API_TOKEN": "t0ken-value", "PLAIN": "not-secret"}
    web = http.Spec(url="https://u:pw12@h/?x=1", headers={"Authorization": "Bearer abc123"})
    assert {"pw12", "Bearer abc123", "abc123"} <= web.secrets(environ)
    prom = prometheus.Spec.model_validate(
        {
            "url": "http://p",
            "query": "up",
            "basic_auth": {"username": "u", "password_env": "PROM_PASSWORD"},
        }
    )
    assert "pr0m-pass" in prom.secrets(environ)
    shell = command.Spec(argv=["true"], env={"DB_PASSWORD": "hunter22"})
    assert shell.secrets(environ) == {"hunter22"}
    inheriting = command.Spec(argv=["true"], inherit_env=True)
    assert inheriting.secrets(environ) == {"pr0m-pass", "t0ken-value"}
